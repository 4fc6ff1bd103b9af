import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

/// When tasks run: delayed dispatches, retries with backoff, operator retries, paused and
/// capped cores, over HTTP on each backend. Delays are a second or two: nothing waits a
/// real minute.
@Suite struct SchedulingTests {
    static func task(_ api: APIClient, _ token: String, _ id: String) async throws -> OrchTask {
        try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
    }

    static func events(_ api: APIClient, _ token: String, _ id: String) async throws -> [TaskEvent] {
        try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events
    }

    static func dispatch(_ api: APIClient, _ token: String, _ request: DispatchRequest) async throws -> DispatchResponse {
        let response = try await api.send(.post, "/dispatch", token: token, body: request)
        #expect(response.status == .accepted, "\(response.text)")
        return try response.decode(DispatchResponse.self)
    }

    static func claim(_ api: APIClient, _ token: String, _ core: String, wait: Int = 0, max: Int = 1, lease: Int = 30)
        async throws -> [ClaimedTask]
    {
        let response = try await api.send(
            .post, "/cores/\(core)/claim", token: token, body: ClaimRequest(workerID: "w", wait: wait, lease: lease, maxTasks: max))
        return response.status == .noContent ? [] : try response.decode(ClaimResponse.self).tasks
    }

    // MARK: Delayed tasks

    @Test(arguments: TestBackend.all)
    func aDelayedTaskIsScheduledUntilItsRunAtThenWakesAWaitingClaim(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let before = Date()
            let answer = try await Self.dispatch(api, token, DispatchRequest(coreID: "later", delay: 2))
            #expect(answer.status == .scheduled && answer.queuePosition == 0)
            let runAt = try #require(answer.runAt)
            #expect(runAt.timeIntervalSince(before) >= 1.9 && runAt.timeIntervalSince(before) < 3)
            #expect(answer.estimatedStart == runAt)
            let shown = try await Self.task(api, token, answer.taskID)
            #expect(shown.status == .scheduled && shown.runAt == runAt)
            let listed = try await api.request(.get, "/tasks?status=scheduled", token: token).decode(TaskList.self)
            #expect(listed.totalTasks == 1 && listed.tasks.map(\.taskID) == [answer.taskID])
            #expect(try await Self.claim(api, token, "later").isEmpty)
            // A claim waiting now is handed the task as soon as it comes due, not at its wait's end.
            let claimed = try await Self.claim(api, token, "later", wait: 20)
            let claimedAt = Date()
            #expect(claimed.map(\.task.taskID) == [answer.taskID])
            #expect(claimedAt >= runAt.addingTimeInterval(-0.05))
            // Woken when it came due, not answered at the end of its 20 s wait.
            #expect(claimedAt.timeIntervalSince(runAt) < 10)
            let types = try await Self.events(api, token, answer.taskID).map(\.eventType)
            #expect(types == ["task.created", "task.ready", "task.started"])
        }
    }

    @Test(arguments: TestBackend.all)
    func aRunAtInThePastMeansNowAndAScheduledTaskCanBeCancelled(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let past = try await Self.dispatch(
                api, token, DispatchRequest(coreID: "past", runAt: Date().addingTimeInterval(-3600)))
            #expect(past.status == .queued && past.queuePosition == 1)
            let future = try await Self.dispatch(
                api, token, DispatchRequest(coreID: "past", runAt: Date().addingTimeInterval(3600)))
            #expect(future.status == .scheduled)
            let cancel = try await api.send(
                .put, "/jobs/\(future.taskID)/status", token: token, body: StatusUpdateRequest(status: .cancelled))
            #expect(cancel.status == .ok)
            #expect(try await Self.task(api, token, future.taskID).status == .cancelled)
            // Not due, so nothing to start by hand either.
            let another = try await Self.dispatch(api, token, DispatchRequest(coreID: "past", delay: 600))
            let start = try await api.send(
                .put, "/jobs/\(another.taskID)/status", token: token, body: StatusUpdateRequest(status: .running))
            #expect(start.status == .conflict)
        }
    }

    @Test(arguments: [
        (#"{"coreId":"c","delay":5,"run_at":"2030-01-01T00:00:00Z"}"#, "run_at"),
        (#"{"coreId":"c","delay":null,"run_at":"2030-01-01T00:00:00Z"}"#, "run_at"),
        (#"{"coreId":"c","delay":-1}"#, "delay"),
        (#"{"coreId":"c","delay":31536001}"#, "delay"),
        (#"{"coreId":"c","delay":1.5}"#, "delay"),
        (#"{"coreId":"c","run_at":"tomorrow"}"#, "run_at"),
        (#"{"coreId":"c","retry_policy":{"initial_interval":-1}}"#, "retry_policy.initial_interval"),
        (#"{"coreId":"c","retry_policy":{"backoff_coefficient":0.5}}"#, "retry_policy.backoff_coefficient"),
        (#"{"coreId":"c","retry_policy":{"initial_interval":"soon"}}"#, "retry_policy.initial_interval"),
    ])
    func badTimingFieldsAreRefusedNamingTheField(body: String, field: String) async throws {
        try await TestServer.withApp(backend: .sqlite) { api in
            let token = try await api.adminToken()
            let response = try await api.request(.post, "/dispatch", token: token, json: body)
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(try response.error.details["field"] == .string(field), "\(response.text)")
        }
    }

    // MARK: Retries

    @Test(arguments: TestBackend.all)
    func aWorkersFailureIsRetriedAfterItsBackoffUntilAttemptsAreSpent(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let policy = RetryPolicy(initialInterval: 0.5, backoffCoefficient: 2, maximumInterval: 10)
            let id = try await Self.dispatch(
                api, token, DispatchRequest(coreID: "flaky", maxAttempts: 3, retryPolicy: policy)
            ).taskID
            for attempt in 1...3 {
                let claimed = try await Self.claim(api, token, "flaky", wait: 10)
                #expect(claimed.first?.task.attempts == attempt)
                let lease = try #require(claimed.first?.leaseToken)
                let failure = try await api.send(
                    .put, "/jobs/\(id)/status", token: token,
                    body: StatusUpdateRequest(status: .failed, error: .string("boom \(attempt)"), leaseToken: lease))
                #expect(failure.status == .ok)
                let task = try await Self.task(api, token, id)
                #expect(task.status == (attempt < 3 ? .scheduled : .failed))
            }
            // The waits grow: 0.5 s, then 1 s (each within 10 % jitter), and no run starts before
            // its wait is over: each requeue's `ready_at` is its time plus the delay, and the next
            // `task.started` is not before it (the server's own times, in milliseconds, so that a
            // slow answer to the test cannot blur them).
            let events = try await Self.events(api, token, id)
            let requeues = events.filter { $0.eventType == "task.requeued" }
            let delays = requeues.compactMap { $0.data["delay"]?.doubleValue }
            #expect(delays.count == 2)
            if delays.count == 2 {
                #expect(delays[0] >= 0.45 && delays[0] <= 0.55 && delays[1] >= 0.9 && delays[1] <= 1.1)
                for (requeue, delay) in zip(requeues, delays) {
                    let readyAt = try #require(requeue.data["ready_at"]?.stringValue.flatMap(Timestamp.parse))
                    #expect(abs(readyAt.timeIntervalSince(requeue.timestamp) - delay) < 0.002)
                    let started = try #require(
                        events.first { $0.eventType == "task.started" && ($0.sequence ?? 0) > (requeue.sequence ?? 0) })
                    #expect(started.timestamp.timeIntervalSince(readyAt) >= -0.001, "started before its wait was over")
                }
            }
            #expect(requeues.map { $0.data["reason"] } == ["retry", "retry"])
            #expect(requeues.map { $0.data["attempt"] } == [1, 2])
            #expect(requeues.first?.data["error"] == "boom 1" && requeues.first?.data["ready_at"] != nil)
            let failed = events.filter { $0.eventType == "task.failed" }
            #expect(failed.count == 1 && failed.first?.data["attempts"] == 3)
        }
    }

    @Test(arguments: TestBackend.all)
    func retryFalseAndAFailureWithoutALeaseAreFinal(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, DispatchRequest(coreID: "final")).taskID
            let lease = try #require(try await Self.claim(api, token, "final").first?.leaseToken)
            _ = try await api.send(
                .put, "/jobs/\(id)/status", token: token,
                body: StatusUpdateRequest(status: .failed, error: "bad input", leaseToken: lease, retry: false))
            #expect(try await Self.task(api, token, id).status == .failed)
            let other = try await Self.dispatch(api, token, DispatchRequest(coreID: "final")).taskID
            _ = try await api.send(.put, "/jobs/\(other)/status", token: token, body: StatusUpdateRequest(status: .running))
            _ = try await api.send(.put, "/jobs/\(other)/status", token: token, body: StatusUpdateRequest(status: .failed))
            #expect(try await Self.task(api, token, other).status == .failed)
        }
    }

    @Test(arguments: TestBackend.all)
    func anOperatorRetryRequeuesAFailedTaskWithAFreshBudget(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, DispatchRequest(coreID: "manual", maxAttempts: 1)).taskID
            let early = try await api.request(.post, "/tasks/\(id)/retry", token: token)
            #expect(early.status == .conflict)
            let lease = try #require(try await Self.claim(api, token, "manual").first?.leaseToken)
            _ = try await api.send(
                .put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .failed, leaseToken: lease))
            #expect(try await Self.task(api, token, id).status == .failed)
            let retried = try await api.request(.post, "/tasks/\(id)/retry", token: token)
            #expect(retried.status == .ok)
            let task = try retried.decode(OrchTask.self)
            #expect(task.status == .queued && task.attempts == 0)
            #expect(try await Self.claim(api, token, "manual").first?.task.attempts == 1)
            let types = try await Self.events(api, token, id).map(\.eventType)
            #expect(types == ["task.created", "task.started", "task.failed", "task.requeued", "task.started"])
            let viewer = try await api.createUser("watcher", role: .viewer, adminToken: token).token
            #expect(try await api.request(.post, "/tasks/\(id)/retry", token: viewer).status == .forbidden)
            #expect(try await api.request(.post, "/tasks/task-unknown/retry", token: token).status == .notFound)
        }
    }

    // MARK: Cores

    @Test(arguments: TestBackend.all)
    func aPausedCoreHandsOutNothingAndResumingWakesWaitingClaims(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let paused = try await api.send(.patch, "/cores/held", token: token, body: CoreUpdateRequest(paused: true))
            #expect(paused.status == .ok)
            #expect(try paused.decode(CoreInfo.self).paused)
            let id = try await Self.dispatch(api, token, DispatchRequest(coreID: "held")).taskID
            #expect(try await Self.claim(api, token, "held").isEmpty)
            async let waiting = Self.claim(api, token, "held", wait: 20)
            try await Task.sleep(for: .milliseconds(400))
            let resumedAt = ContinuousClock.now
            _ = try await api.send(.patch, "/cores/held", token: token, body: CoreUpdateRequest(paused: false))
            let claimed = try await waiting
            #expect(claimed.map(\.task.taskID) == [id])
            #expect(ContinuousClock.now - resumedAt < .seconds(10))
        }
    }

    @Test(arguments: TestBackend.all)
    func maxRunningCapsClaimsAndARunEndingMakesRoom(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await api.send(.patch, "/cores/capped", token: token, body: CoreUpdateRequest(maxRunning: 2))
            for _ in 0..<6 { _ = try await Self.dispatch(api, token, DispatchRequest(coreID: "capped")) }
            let first = try await Self.claim(api, token, "capped", max: 5)
            #expect(first.count == 2)
            #expect(try await Self.claim(api, token, "capped", max: 5).isEmpty)
            async let waiting = Self.claim(api, token, "capped", wait: 20, max: 5)
            try await Task.sleep(for: .milliseconds(400))
            _ = try await api.send(
                .put, "/jobs/\(first[0].task.taskID)/status", token: token,
                body: StatusUpdateRequest(status: .completed, leaseToken: first[0].leaseToken))
            #expect(try await waiting.count == 1)
            let core = try await api.request(.get, "/cores/capped", token: token).decode(CoreInfo.self)
            #expect(core.running == 2 && core.queued == 3 && core.maxRunning == 2 && !core.paused)
            // Without the cap the rest comes at once.
            _ = try await api.request(.patch, "/cores/capped", token: token, json: #"{"max_running":null}"#)
            #expect(try await Self.claim(api, token, "capped", max: 5).count == 3)
        }
    }

    @Test(arguments: TestBackend.all)
    func coresAreListedWithTheirCountsWorkersAndOldestQueuedTask(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let dispatchedAt = Date()
            for core in ["alpha", "alpha", "beta"] { _ = try await Self.dispatch(api, token, DispatchRequest(coreID: core)) }
            _ = try await Self.dispatch(api, token, DispatchRequest(coreID: "alpha", priority: 5, delay: 600))
            _ = try await Self.claim(api, token, "beta")
            let viewer = try await api.createUser("viewer", role: .viewer, adminToken: token).token
            let listed = try await api.request(.get, "/cores", token: viewer)
            #expect(listed.status == .ok, "\(listed.text)")
            let list = try listed.decode(CoreList.self)
            #expect(list.cores.map(\.coreID) == ["alpha", "beta"])
            let alpha = list.cores[0]
            #expect(alpha.queued == 2 && alpha.scheduled == 1 && alpha.running == 0 && alpha.activeWorkers == 0)
            let oldest = try #require(alpha.oldestQueuedAt)
            #expect(abs(oldest.timeIntervalSince(dispatchedAt)) < 2 && (alpha.oldestQueuedAge ?? -1) >= 0)
            let beta = list.cores[1]
            #expect(beta.queued == 0 && beta.running == 1 && beta.activeWorkers == 1 && beta.oldestQueuedAt == nil)
            #expect(try await api.request(.get, "/cores/nowhere", token: viewer).status == .notFound)
            #expect(try await api.send(.patch, "/cores/alpha", token: viewer, body: CoreUpdateRequest(paused: true)).status == .forbidden)
        }
    }

    @Test(arguments: [
        (#"{"max_running":0}"#, "max_running" as String?),
        (#"{"max_running":"two"}"#, "max_running"),
        (#"{"paused":"yes"}"#, "paused"),
    ])
    func badCoreUpdatesAreRefused(body: String, field: String?) async throws {
        try await TestServer.withApp(backend: .sqlite) { api in
            let token = try await api.adminToken()
            let response = try await api.request(.patch, "/cores/c", token: token, json: body)
            #expect(response.status == .badRequest, "\(response.text)")
            if let field { #expect(try response.error.details["field"] == .string(field), "\(response.text)") }
        }
    }

    // MARK: Bulk actions

    @Test(arguments: TestBackend.all)
    func bulkCancelAndRetryCountOrChangeTheMatchingTasks(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            var batch = (0..<600).map { index in DispatchRequest(coreID: "bulk", priority: index % 3 + 1) }
            batch += (0..<5).map { _ in DispatchRequest(coreID: "kept") }
            let created = try await api.send(.post, "/dispatch/batch", token: token, body: DispatchBatchRequest(tasks: batch))
            #expect(created.status == .accepted)
            let finished = try await Self.dispatch(api, token, DispatchRequest(coreID: "bulk")).taskID
            _ = try await api.send(.put, "/jobs/\(finished)/status", token: token, body: StatusUpdateRequest(status: .completed))

            let dry = try await api.send(.post, "/tasks/cancel", token: token, body: BulkTaskRequest(coreID: "bulk", dryRun: true))
            #expect(dry.status == .ok, "\(dry.text)")
            let counted = try dry.decode(BulkTaskResponse.self)
            #expect(counted.matched == 601 && counted.skipped == 1 && counted.changed == nil && counted.dryRun)
            #expect(try await api.request(.get, "/tasks?status=queued", token: token).decode(TaskList.self).totalTasks == 605)

            // More than one batch: every matching task is cancelled once, the finished one skipped.
            let cancelled = try await api.send(.post, "/tasks/cancel", token: token, body: BulkTaskRequest(coreID: "bulk"))
            #expect(cancelled.text.contains(#""cancelled":600"#), "\(cancelled.text)")
            let result = try cancelled.decode(BulkTaskResponse.self)
            #expect(result.matched == 601 && result.changed == 600 && result.skipped == 1)
            #expect(try await api.request(.get, "/tasks?status=cancelled", token: token).decode(TaskList.self).totalTasks == 600)
            #expect(try await api.request(.get, "/tasks?status=queued", token: token).decode(TaskList.self).totalTasks == 5)

            let retried = try await api.send(
                .post, "/tasks/retry", token: token, body: BulkTaskRequest(coreID: "bulk", priority: 2))
            #expect(retried.text.contains(#""retried":200"#), "\(retried.text)")
            #expect(try retried.decode(BulkTaskResponse.self).skipped == 0)
            let byStatus = try await api.send(
                .post, "/tasks/retry", token: token, body: BulkTaskRequest(status: .cancelled, dryRun: true))
            #expect(try byStatus.decode(BulkTaskResponse.self).matched == 400)
            let ids = try await api.send(
                .post, "/tasks/retry", token: token, body: BulkTaskRequest(taskIDs: [finished, "task-none"]))
            let byID = try ids.decode(BulkTaskResponse.self)
            #expect(byID.matched == 1 && byID.changed == 0 && byID.skipped == 1)
        }
    }

    @Test(arguments: [
        (#"{"status":"sleeping"}"#, "status" as String?),
        (#"{"priority":11}"#, "priority"),
        (#"{"core_id":"bad core"}"#, "core_id"),
        (#"{"created_before":"yesterday"}"#, "created_before"),
        (#"{"task_ids":"task-1"}"#, "task_ids"),
    ])
    func badBulkFiltersAreRefused(body: String, field: String?) async throws {
        try await TestServer.withApp(backend: .sqlite) { api in
            let token = try await api.adminToken()
            for path in ["/tasks/cancel", "/tasks/retry"] {
                let response = try await api.request(.post, path, token: token, json: body)
                #expect(response.status == .badRequest, "\(response.text)")
                if let field { #expect(try response.error.details["field"] == .string(field), "\(response.text)") }
            }
            let many = #"{"task_ids":[\#((0...1000).map { "\"task-\($0)\"" }.joined(separator: ","))]}"#
            let tooMany = try await api.request(.post, "/tasks/cancel", token: token, json: many)
            #expect(try tooMany.error.details["field"] == "task_ids")
        }
    }

    // MARK: Schedules

    @Test(arguments: TestBackend.all)
    func aScheduleFiresEachSlotWithItsTemplateUntilPausedOrDeleted(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let created = try await api.send(
                .post, "/schedules", token: token,
                body: CreateScheduleRequest(
                    name: "heartbeat", coreID: "periodic", every: "1s",
                    task: ScheduleTaskTemplate(priority: 7, maxAttempts: 2, metadata: ["report": "daily"])))
            #expect(created.status == .created, "\(created.text)")
            let schedule = try created.decode(Schedule.self)
            #expect(schedule.scheduleID.hasPrefix("schedule-") && schedule.timezone == "UTC" && !schedule.paused)
            let first = try #require(schedule.nextRunAt)
            #expect(first.timeIntervalSince(schedule.createdAt) == 1)
            let taken = try await api.send(.post, "/schedules", token: token, body: CreateScheduleRequest(name: "heartbeat", coreID: "x", every: "5m"))
            #expect(taken.status == .conflict)
            #expect(try taken.error.details["field"] == "name")

            let claimed = try await Self.claim(api, token, "periodic", wait: 10)
            let task = try #require(claimed.first?.task)
            #expect(task.priority == 7 && task.maxAttempts == 2)
            #expect(task.metadata["schedule_id"] == .string(schedule.scheduleID) && task.metadata["report"] == "daily")
            let shown = try await api.request(.get, "/schedules/\(schedule.scheduleID)", token: token).decode(Schedule.self)
            #expect(shown.lastRunAt != nil && shown.lastTaskID != nil)
            #expect((shown.nextRunAt ?? .distantPast) > (shown.lastRunAt ?? .distantFuture))

            let paused = try await api.send(
                .patch, "/schedules/\(schedule.scheduleID)", token: token, body: UpdateScheduleRequest(paused: true))
            #expect(paused.status == .ok)
            #expect(try paused.decode(Schedule.self).nextRunAt == nil)
            let count = try await api.request(.get, "/tasks?core_id=periodic", token: token).decode(TaskList.self).totalTasks
            try await Task.sleep(for: .seconds(2.2))
            #expect(try await api.request(.get, "/tasks?core_id=periodic", token: token).decode(TaskList.self).totalTasks == count)

            let list = try await api.request(.get, "/schedules", token: token).decode(ScheduleList.self)
            #expect(list.totalSchedules == 1 && list.schedules.map(\.name) == ["heartbeat"])
            #expect(try await api.request(.delete, "/schedules/\(schedule.scheduleID)", token: token).status == .noContent)
            #expect(try await api.request(.get, "/schedules/\(schedule.scheduleID)", token: token).status == .notFound)
            #expect(try await api.request(.delete, "/schedules/\(schedule.scheduleID)", token: token).status == .notFound)
        }
    }

    @Test func aCronScheduleShowsItsNextSlotInItsZone() async throws {
        try await TestServer.withApp(backend: .sqlite) { api in
            let token = try await api.adminToken()
            let created = try await api.send(
                .post, "/schedules", token: token,
                body: CreateScheduleRequest(name: "morning", coreID: "reports", cron: "0 9 * * *", timezone: "Asia/Tokyo"))
            let schedule = try created.decode(Schedule.self)
            let next = try #require(schedule.nextRunAt)
            // 09:00 in Tokyo is 00:00 UTC; the next one is within a day.
            #expect(Int(next.timeIntervalSince1970) % 86_400 == 0)
            #expect(next > Date() && next.timeIntervalSinceNow <= 86_400)
            let changed = try await api.send(
                .patch, "/schedules/\(schedule.scheduleID)", token: token, body: UpdateScheduleRequest(every: "90s"))
            let every = try changed.decode(Schedule.self)
            #expect(every.cron == nil && every.every == "90s")
            #expect(abs((every.nextRunAt ?? .distantPast).timeIntervalSinceNow - 90) < 5)
        }
    }

    @Test(arguments: [
        (#"{"name":"n","core_id":"c"}"#, "cron"),
        (#"{"name":"n","core_id":"c","cron":"* * *"}"#, "cron"),
        (#"{"name":"n","core_id":"c","cron":"0 0 30 2 *"}"#, "cron"),
        (#"{"name":"n","core_id":"c","cron":"@reboot"}"#, "cron"),
        (#"{"name":"n","core_id":"c","every":"0s"}"#, "every"),
        (#"{"name":"n","core_id":"c","every":"soon"}"#, "every"),
        (#"{"name":"n","core_id":"c","every":"367d"}"#, "every"),
        (#"{"name":"n","core_id":"c","every":"9h179897984h"}"#, "every"),
        (#"{"name":"n","core_id":"c","cron":"* * * * *","every":"5m"}"#, "every"),
        (#"{"name":"n","core_id":"c","every":"5m","timezone":"Mars/Olympus"}"#, "timezone"),
        (#"{"name":"","core_id":"c","every":"5m"}"#, "name"),
        (#"{"name":"n","core_id":"bad core","every":"5m"}"#, "core_id"),
        (#"{"name":"n","core_id":"c","every":"5m","task":{"priority":0}}"#, "task.priority"),
        (#"{"name":"n","core_id":"c","every":"5m","task":{"metadata":{"callback_url":"ftp://x"}}}"#, "task.metadata.callback_url"),
        (#"{"core_id":"c","every":"5m"}"#, "name"),
    ])
    func badSchedulesAreRefusedNamingTheField(body: String, field: String) async throws {
        try await TestServer.withApp(backend: .sqlite) { api in
            let token = try await api.adminToken()
            let response = try await api.request(.post, "/schedules", token: token, json: body)
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(try response.error.details["field"] == .string(field), "\(response.text)")
        }
    }

    // MARK: Metrics

    @Test(arguments: TestBackend.all)
    func scheduledTasksRetriesAndFiringsAreCounted(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            for _ in 0..<3 { _ = try await Self.dispatch(api, token, DispatchRequest(coreID: "waiting", delay: 600)) }
            let id = try await Self.dispatch(
                api, token, DispatchRequest(coreID: "flaky", retryPolicy: RetryPolicy(initialInterval: 600, maximumInterval: 600))).taskID
            let lease = try #require(try await Self.claim(api, token, "flaky").first?.leaseToken)
            _ = try await api.send(
                .put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .failed, leaseToken: lease))
            _ = try await api.send(.post, "/schedules", token: token, body: CreateScheduleRequest(name: "m", coreID: "fired", every: "1s"))
            #expect(try await Self.claim(api, token, "fired", wait: 10).count == 1)
            let (_, metrics) = try await MetricsTests.scrape(api, token: token)
            #expect(metrics.value("orch_tasks_scheduled", ["core_id": "waiting"]) == 3)
            #expect(metrics.value("orch_tasks_scheduled", ["core_id": "flaky"]) == 1)
            #expect(metrics.value("orch_task_retries_total", ["core_id": "flaky"]) == 1)
            #expect((metrics.value("orch_schedule_firings_total", ["core_id": "fired"]) ?? 0) >= 1)
        }
    }
}
