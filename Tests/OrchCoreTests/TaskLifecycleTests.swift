import Foundation
import OrchCore
import OrchModels
import Testing

@Suite struct TaskLifecycleTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func task(_ status: TaskStatus = .queued, stay: Bool = false, attempts: Int = 0, maxAttempts: Int = 3)
        -> TaskRecord
    {
        TaskRecord(
            id: "task-1", coreID: "core", status: status, priority: 1, timeout: 60, stay: stay, attempts: attempts,
            maxAttempts: maxAttempts, createdAt: now.addingTimeInterval(-100))
    }

    static let allowed: Set<String> = [
        "queued>running", "queued>completed", "queued>failed", "queued>cancelled",
        "running>running", "running>completed", "running>failed", "running>cancelled", "running>queued",
        "running>scheduled", "scheduled>queued", "scheduled>cancelled",
    ]

    @Test(arguments: TaskStatus.allCases, TaskStatus.allCases)
    func transitionTableAllowsExactlyTheDocumentedMoves(from: TaskStatus, to: TaskStatus) {
        #expect(TaskLifecycle.canMove(from: from, to: to) == Self.allowed.contains("\(from.rawValue)>\(to.rawValue)"))
    }

    @Test(arguments: [TaskStatus.completed, .failed, .cancelled], [TaskStatus.running, .completed, .failed, .cancelled])
    func updateOnAFinishedTaskIsAConflict(terminal: TaskStatus, target: TaskStatus) {
        #expect {
            _ = try TaskLifecycle.update(Self.task(terminal), with: StatusUpdateRequest(status: target), now: Self.now)
        } throws: { error in
            (error as? OrchError)?.code == .resourceConflict && (error as? OrchError)?.status == 409
        }
    }

    @Test(arguments: [TaskStatus.running, .completed, .failed, .cancelled])
    func clientMovesFromQueuedAndRunningAreApplied(target: TaskStatus) throws {
        for start in [TaskStatus.queued, .running] {
            var task = Self.task(start)
            if start == .running { task.startedAt = Self.now.addingTimeInterval(-10); task.attempts = 1 }
            let transition = try TaskLifecycle.update(task, with: StatusUpdateRequest(status: target), now: Self.now)
            #expect(transition.task.status == target)
            #expect(!transition.events.isEmpty)
            #expect(transition.task.updatedAt == Self.now)
        }
    }

    @Test func firstRunningEmitsStartedThenProgress() throws {
        let transition = try TaskLifecycle.update(
            Self.task(), with: StatusUpdateRequest(status: .running, progress: 50, message: "half", workerID: "w1"),
            now: Self.now)
        #expect(transition.events.map(\.type.rawValue) == ["task.started", "task.progress"])
        #expect(transition.events[0].data["worker_id"] == "w1")
        #expect(transition.events[0].data["start_time"] == .string(Timestamp.format(Self.now)))
        #expect(transition.events[1].data["progress"] == 50)
        #expect(transition.events[1].data["message"] == "half")
        #expect(transition.task.attempts == 1 && transition.task.startedAt == Self.now && transition.task.progress == 50)
        let again = try TaskLifecycle.update(transition.task, with: StatusUpdateRequest(status: .running, progress: 75), now: Self.now)
        #expect(again.events.map(\.type.rawValue) == ["task.progress"])
    }

    @Test func completionRecordsDurationAndResult() throws {
        var task = Self.task(.running)
        task.startedAt = Self.now.addingTimeInterval(-240.5)
        let transition = try TaskLifecycle.update(
            task, with: StatusUpdateRequest(status: .completed, result: ["rows": 2000]), now: Self.now)
        #expect(transition.task.duration == 240.5)
        #expect(transition.task.completedAt == Self.now)
        #expect(transition.task.result == ["rows": 2000])
        #expect(transition.events.map(\.type.rawValue) == ["task.completed"])
        #expect(transition.events[0].data["status"] == "success")
        #expect(transition.events[0].data["duration"] == .double(240.5))
    }

    @Test func staleLeaseTokenIsAConflict() throws {
        let claimed = try TaskLifecycle.claim(Self.task(), workerID: "w", lease: 30, leaseToken: "lease-a", now: Self.now).task
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.update(claimed, with: StatusUpdateRequest(status: .completed, leaseToken: "lease-b"), now: Self.now)
        }
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.heartbeat(claimed, workerID: "w", leaseToken: "lease-b", lease: nil, now: Self.now)
        }
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.heartbeat(claimed, workerID: "other", leaseToken: "lease-a", lease: nil, now: Self.now)
        }
        let done = try TaskLifecycle.update(claimed, with: StatusUpdateRequest(status: .completed, leaseToken: "lease-a"), now: Self.now)
        #expect(done.task.status == .completed)
    }

    @Test func claimStartsALeasedRunAndHeartbeatExtendsIt() throws {
        let claimed = try TaskLifecycle.claim(Self.task(), workerID: "w", lease: 30, leaseToken: "lease-a", now: Self.now)
        #expect(claimed.task.status == .running && claimed.task.attempts == 1)
        #expect(claimed.task.leaseExpiresAt == Self.now.addingTimeInterval(30))
        #expect(claimed.events.map(\.type.rawValue) == ["task.started"])
        let later = Self.now.addingTimeInterval(20)
        let beat = try TaskLifecycle.heartbeat(claimed.task, workerID: "w", leaseToken: "lease-a", lease: nil, now: later)
        #expect(beat.task.leaseExpiresAt == later.addingTimeInterval(30))
        let longer = try TaskLifecycle.heartbeat(claimed.task, workerID: "w", leaseToken: "lease-a", lease: 90, now: later)
        #expect(longer.task.leaseExpiresAt == later.addingTimeInterval(90))
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.claim(claimed.task, workerID: "w2", lease: 30, leaseToken: "lease-b", now: Self.now)
        }
    }

    @Test func cancellingARunningTaskIsReportedToItsHeartbeat() throws {
        let claimed = try TaskLifecycle.claim(Self.task(), workerID: "w", lease: 30, leaseToken: "lease-a", now: Self.now).task
        let cancelled = try TaskLifecycle.update(claimed, with: StatusUpdateRequest(status: .cancelled), now: Self.now)
        #expect(cancelled.task.status == .cancelled && cancelled.task.cancelRequested)
        #expect(cancelled.events.map(\.type.rawValue) == ["task.cancelled"])
        let beat = try TaskLifecycle.heartbeat(cancelled.task, workerID: "w", leaseToken: "lease-a", lease: nil, now: Self.now)
        #expect(beat.task.cancelRequested && beat.task.status == .cancelled)
    }

    @Test func expiredLeaseRequeuesWhileAttemptsRemainThenFails() throws {
        var task = try TaskLifecycle.claim(Self.task(maxAttempts: 2), workerID: "w", lease: 5, leaseToken: "l1", now: Self.now).task
        #expect(TaskLifecycle.expire(task, now: Self.now.addingTimeInterval(4)) == nil)
        let requeued = try #require(TaskLifecycle.expire(task, now: Self.now.addingTimeInterval(5), jitter: 0))
        // Retried after the first backoff (1 s by default), as a worker's failure would be.
        #expect(requeued.task.status == .scheduled && requeued.task.leaseToken == nil && requeued.task.attempts == 1)
        #expect(requeued.task.readyAt == Self.now.addingTimeInterval(6))
        #expect(requeued.events.map(\.type.rawValue) == ["task.requeued"])
        #expect(requeued.events[0].data["reason"] == "lease_expired")
        #expect(requeued.events[0].data["attempt"] == 1)
        #expect(TaskLifecycle.promote(requeued.task, now: Self.now.addingTimeInterval(5.9)) == nil)
        let ready = try #require(TaskLifecycle.promote(requeued.task, now: Self.now.addingTimeInterval(6)))
        #expect(ready.task.status == .queued && ready.events.map(\.type.rawValue) == ["task.ready"])
        task = try TaskLifecycle.claim(ready.task, workerID: "w", lease: 5, leaseToken: "l2", now: Self.now.addingTimeInterval(6)).task
        #expect(task.attempts == 2)
        let failed = try #require(TaskLifecycle.expire(task, now: Self.now.addingTimeInterval(20)))
        #expect(failed.task.status == .failed)
        #expect(failed.events.map(\.type.rawValue) == ["task.failed"])
        #expect(failed.events[0].data["reason"] == "lease_expired")
    }

    @Test func runningPastTimeoutFails() throws {
        var task = Self.task(.running)
        task.startedAt = Self.now
        task.attempts = 1
        #expect(TaskLifecycle.expire(task, now: Self.now.addingTimeInterval(59)) == nil)
        let failed = try #require(TaskLifecycle.expire(task, now: Self.now.addingTimeInterval(60)))
        #expect(failed.task.status == .failed)
        #expect(failed.events[0].data["reason"] == "timeout")
        #expect(failed.task.duration == 60)
    }

    @Test func stayTaskReturnsToQueueWithGrowingBackoffAfterFailures() throws {
        var task = Self.task(.running, stay: true, attempts: 1)
        task.startedAt = Self.now
        let completed = try TaskLifecycle.update(task, with: StatusUpdateRequest(status: .completed), now: Self.now)
        #expect(completed.task.status == .queued && completed.task.readyAt == Self.now && completed.task.attempts == 0)
        #expect(completed.events.map(\.type.rawValue) == ["task.completed", "task.requeued"])
        var delays: [Double] = []
        var current = completed.task
        for _ in 0..<4 {
            current = try TaskLifecycle.update(current, with: StatusUpdateRequest(status: .running), now: Self.now).task
            let failed = try TaskLifecycle.update(
                current, with: StatusUpdateRequest(status: .failed, error: "boom"), now: Self.now, jitter: 0)
            #expect(failed.events.map(\.type.rawValue) == ["task.failed", "task.requeued"])
            #expect(failed.task.status == .scheduled)
            delays.append(failed.task.readyAt.timeIntervalSince(Self.now))
            current = try #require(TaskLifecycle.promote(failed.task, now: failed.task.readyAt)).task
        }
        #expect(delays == [1, 2, 4, 8])
        let cancelled = try TaskLifecycle.update(current, with: StatusUpdateRequest(status: .cancelled), now: Self.now)
        #expect(cancelled.task.status == .cancelled)
        #expect(cancelled.events.map(\.type.rawValue) == ["task.cancelled"])
    }

    // MARK: Delays and retries

    @Test func aDelayOrAFutureRunAtSchedulesAndAPastOneQueues() throws {
        let delayed = TaskLifecycle.dispatch(
            DispatchRequest(coreID: "core", delay: 90), id: "task-d", createdBy: nil, now: Self.now)
        #expect(delayed.task.status == .scheduled && delayed.task.readyAt == Self.now.addingTimeInterval(90))
        #expect(delayed.events[0].data["status"] == "scheduled")
        #expect(delayed.events[0].data["run_at"] == .string(Timestamp.format(Self.now.addingTimeInterval(90))))
        let at = TaskLifecycle.dispatch(
            DispatchRequest(coreID: "core", runAt: Self.now.addingTimeInterval(3600)), id: "task-a", createdBy: nil,
            now: Self.now)
        #expect(at.task.status == .scheduled && at.task.readyAt == Self.now.addingTimeInterval(3600))
        let past = TaskLifecycle.dispatch(
            DispatchRequest(coreID: "core", runAt: Self.now.addingTimeInterval(-60)), id: "task-p", createdBy: nil,
            now: Self.now)
        #expect(past.task.status == .queued && past.task.readyAt == Self.now)
        let zero = TaskLifecycle.dispatch(DispatchRequest(coreID: "core", delay: 0), id: "task-z", createdBy: nil, now: Self.now)
        #expect(zero.task.status == .queued)
    }

    @Test func aScheduledTaskCannotStartButCanBeCancelled() throws {
        var task = Self.task(.scheduled)
        task.readyAt = Self.now.addingTimeInterval(60)
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.update(task, with: StatusUpdateRequest(status: .running), now: Self.now)
        }
        #expect(throws: OrchError.self) {
            _ = try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: "l", now: Self.now)
        }
        let cancelled = try TaskLifecycle.update(task, with: StatusUpdateRequest(status: .cancelled), now: Self.now)
        #expect(cancelled.task.status == .cancelled && !cancelled.task.cancelRequested)
        #expect(TaskLifecycle.promote(cancelled.task, now: Self.now.addingTimeInterval(120)) == nil)
    }

    /// The n-th retry waits min(initial * coefficient^(n-1), maximum), moved by jitter at most 10 %.
    @Test func backoffGrowsToItsMaximumWithinTheJitterBounds() {
        let policy = RetryPolicy(initialInterval: 2, backoffCoefficient: 3, maximumInterval: 100)
        #expect((1...6).map { policy.delay(beforeRetry: $0, jitter: 0) } == [2, 6, 18, 54, 100, 100])
        #expect(abs(policy.delay(beforeRetry: 2, jitter: 1) - 6.6) < 1e-9)
        #expect(abs(policy.delay(beforeRetry: 2, jitter: -1) - 5.4) < 1e-9)
        #expect(abs(policy.delay(beforeRetry: 9, jitter: 1) - 110) < 1e-9)
        for _ in 0..<1000 {
            let delay = policy.delay(beforeRetry: 3, jitter: .random(in: -1...1))
            #expect(delay >= 18 * 0.9 - 1e-9 && delay <= 18 * 1.1 + 1e-9)
        }
        #expect(RetryPolicy.standard.delay(beforeRetry: 1, jitter: 0) == 1)
        #expect(RetryPolicy.standard.delay(beforeRetry: 20, jitter: 0) == 300)
    }

    @Test func aWorkersFailureIsRetriedWithBackoffUntilAttemptsAreSpent() throws {
        var task = Self.task(maxAttempts: 3)
        task.retryPolicy = RetryPolicy(initialInterval: 10, backoffCoefficient: 2, maximumInterval: 300)
        var now = Self.now
        var waits: [Double] = []
        for attempt in 1...3 {
            let claimed = try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: "l\(attempt)", now: now).task
            #expect(claimed.attempts == attempt)
            let failed = try TaskLifecycle.update(
                claimed, with: StatusUpdateRequest(status: .failed, error: "boom", leaseToken: "l\(attempt)"), now: now,
                jitter: 0)
            if attempt == 3 {
                #expect(failed.task.status == .failed)
                #expect(failed.events.map(\.type.rawValue) == ["task.failed"])
                #expect(failed.events[0].data["attempts"] == 3)
                break
            }
            #expect(failed.task.status == .scheduled && failed.task.error == "boom" && failed.task.leaseToken == nil)
            #expect(failed.events.map(\.type.rawValue) == ["task.requeued"])
            let data = failed.events[0].data
            #expect(data["reason"] == "retry" && data["attempt"] == .int(Int64(attempt)) && data["error"] == "boom")
            #expect(data["ready_at"] == .string(Timestamp.format(failed.task.readyAt)))
            waits.append(failed.task.readyAt.timeIntervalSince(now))
            now = failed.task.readyAt
            task = try #require(TaskLifecycle.promote(failed.task, now: now)).task
        }
        #expect(waits == [10, 20])
    }

    @Test func retryFalseAFailureWithoutALeaseAndATimeoutAreFinal() throws {
        let claimed = try TaskLifecycle.claim(Self.task(), workerID: "w", lease: 30, leaseToken: "l", now: Self.now).task
        let refused = try TaskLifecycle.update(
            claimed, with: StatusUpdateRequest(status: .failed, error: "bad input", leaseToken: "l", retry: false),
            now: Self.now)
        #expect(refused.task.status == .failed && refused.events.map(\.type.rawValue) == ["task.failed"])
        let unleased = try TaskLifecycle.update(claimed, with: StatusUpdateRequest(status: .failed, error: "x"), now: Self.now)
        #expect(unleased.task.status == .failed)
        let timedOut = try #require(TaskLifecycle.expire(claimed, now: Self.now.addingTimeInterval(60)))
        #expect(timedOut.task.status == .failed && timedOut.events[0].data["reason"] == "timeout")
    }

    @Test(arguments: [TaskStatus.failed, .cancelled])
    func anOperatorRetryRequeuesWithAFreshBudget(status: TaskStatus) throws {
        var task = Self.task(status, attempts: 3)
        task.error = "boom"
        task.completedAt = Self.now
        let retried = try TaskLifecycle.retry(task, now: Self.now)
        #expect(retried.task.status == .queued && retried.task.attempts == 0 && retried.task.readyAt == Self.now)
        #expect(retried.task.completedAt == nil && !retried.task.cancelRequested)
        #expect(retried.events.map(\.type.rawValue) == ["task.requeued"])
        #expect(retried.events[0].data["reason"] == "manual")
        #expect(retried.events[0].data["previous_status"] == .string(status.rawValue))
    }

    @Test(arguments: [TaskStatus.scheduled, .queued, .running, .completed])
    func anOperatorRetryOfAnyOtherStatusIsAConflict(status: TaskStatus) {
        #expect {
            _ = try TaskLifecycle.retry(Self.task(status), now: Self.now)
        } throws: { error in
            (error as? OrchError)?.status == 409
        }
    }
}
