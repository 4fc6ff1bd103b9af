import Foundation
import OrchModels

/// The task state machine: every change a task can go through, as pure functions from the
/// current record to a ``TaskTransition`` (the new record and the events describing the change).
///
/// Allowed moves (see ``canMove(from:to:)``):
///
/// | from | to |
/// | --- | --- |
/// | `scheduled` | `queued` (its `run_at` came, `task.ready`), `cancelled` |
/// | `queued` | `running`, `completed`, `failed`, `cancelled` |
/// | `running` | `running` (progress), `completed`, `failed`, `cancelled`, `scheduled` (a retry) |
/// | `completed`, `failed`, `cancelled` | nothing (409 `RESOURCE_CONFLICT`), except an operator's retry |
///
/// A worker's failure (reported with the current lease token) and a lapsed lease are retried
/// while attempts remain: the task is `scheduled` for the backoff of its ``RetryPolicy``
/// (`task.requeued` with `reason` `retry` or `lease_expired`). A `stay` task that completes goes
/// back to `queued` at once; one that fails waits as `scheduled` for the same backoff, counted
/// in failures in a row. Randomness (the ±10 % jitter) comes in as a `jitter` argument in -1...1,
/// so every function here stays a pure function of its inputs.
public enum TaskLifecycle {
    /// Whether a task may move from `from` to `to`.
    public static func canMove(from: TaskStatus, to: TaskStatus) -> Bool {
        switch (from, to) {
        case (.scheduled, .queued), (.scheduled, .cancelled), (.running, .scheduled):
            true
        case (.queued, .running), (.queued, .completed), (.queued, .failed), (.queued, .cancelled):
            true
        case (.running, .running), (.running, .completed), (.running, .failed), (.running, .cancelled),
            (.running, .queued):
            true
        default:
            false
        }
    }

    /// A new task and its `task.created` event: `scheduled` until its `run_at` (or `delay`)
    /// when that is later than `now`, else `queued`.
    public static func dispatch(
        _ request: DispatchRequest, id: String, createdBy: String?, now: Date
    ) -> TaskTransition {
        let runAt = request.runAt ?? now.addingTimeInterval(TimeInterval(request.delay ?? 0))
        let readyAt = max(now, runAt)
        let task = TaskRecord(
            id: id, coreID: request.coreID, status: readyAt > now ? .scheduled : .queued, priority: request.priority,
            timeout: request.timeout, stay: request.stay, maxAttempts: request.maxAttempts, createdAt: now,
            metadata: request.metadata, readyAt: readyAt, createdBy: createdBy,
            retryPolicy: request.retryPolicy ?? .standard)
        let event = EventDraft(
            type: .taskCreated, timestamp: now,
            data: [
                "core_id": .string(request.coreID), "priority": .int(Int64(request.priority)),
                "timeout": .int(Int64(request.timeout)), "stay": .bool(request.stay),
                "max_attempts": .int(Int64(request.maxAttempts)), "status": .string(task.status.rawValue),
                "run_at": .string(Timestamp.format(readyAt)),
            ])
        return TaskTransition(task: task, events: [event])
    }

    /// A `scheduled` task whose `run_at` has come joins its core's queue (`task.ready`), in
    /// claim order at its `run_at`; `nil` when it is not due (or no longer scheduled).
    public static func promote(_ task: TaskRecord, now: Date) -> TaskTransition? {
        guard task.status == .scheduled, task.readyAt <= now else { return nil }
        var next = task
        next.status = .queued
        next.updatedAt = now
        let event = EventDraft(
            type: .taskReady, timestamp: now,
            data: ["previous_status": "scheduled", "run_at": .string(Timestamp.format(task.readyAt))])
        return TaskTransition(task: next, events: [event])
    }

    /// An operator's retry of a `failed` or `cancelled` task: back in the queue at once with a
    /// fresh attempt budget (`task.requeued` with `reason: "manual"`); its history stays. 409
    /// for any other status.
    public static func retry(_ task: TaskRecord, now: Date) throws(OrchError) -> TaskTransition {
        guard task.status == .failed || task.status == .cancelled else {
            throw conflict(task, "is \(task.status.rawValue); only a failed or cancelled task can be retried")
        }
        var next = task
        clearLease(&next)
        next.status = .queued
        next.attempts = 0
        next.consecutiveFailures = 0
        next.cancelRequested = false
        next.readyAt = now
        next.startedAt = nil
        next.completedAt = nil
        next.progress = nil
        next.updatedAt = now
        let event = EventDraft(
            type: .taskRequeued, timestamp: now,
            data: [
                "reason": "manual", "previous_status": .string(task.status.rawValue),
                "max_attempts": .int(Int64(task.maxAttempts)), "ready_at": .string(Timestamp.format(now)),
            ])
        return TaskTransition(task: next, events: [event])
    }

    /// A worker's claim of a queued task: it starts running under a lease.
    public static func claim(
        _ task: TaskRecord, workerID: String, lease: Int, leaseToken: String, now: Date
    ) throws(OrchError) -> TaskTransition {
        try requireMove(task, to: .running)
        guard task.status == .queued else { throw conflict(task, "is not queued") }
        var next = task
        next.leaseToken = leaseToken
        next.leaseSeconds = lease
        next.leaseExpiresAt = now.addingTimeInterval(TimeInterval(lease))
        let started = start(&next, workerID: workerID, now: now)
        var event = started
        event.data["lease_expires_at"] = .string(Timestamp.format(next.leaseExpiresAt!))
        return TaskTransition(task: next, events: [event])
    }

    /// A client's `PUT /jobs/{id}/status`.
    ///
    /// Throws 409 `RESOURCE_CONFLICT` for a finished task, a move the table refuses, or a
    /// `lease_token` that is not the task's current one. A failure reported with the current
    /// lease token is retried while attempts remain, unless `retry` is `false`.
    public static func update(
        _ task: TaskRecord, with update: StatusUpdateRequest, now: Date, jitter: Double = .random(in: -1...1)
    ) throws(OrchError) -> TaskTransition {
        if let token = update.leaseToken, token != task.leaseToken {
            throw OrchError.conflict(
                "The lease token is not current for task \(task.id)",
                details: ["task_id": .string(task.id), "reason": "stale_lease"])
        }
        try requireMove(task, to: update.status)
        var next = task
        var events: [EventDraft] = []
        let details = update.metadata.map { JSONValue.object($0) }
        switch update.status {
        case .running:
            if task.status == .queued {
                let worker = update.workerID ?? task.metadata["worker_id"]?.stringValue
                events.append(start(&next, workerID: worker, now: now))
            }
            if update.progress != nil || update.message != nil || details != nil || task.status == .running {
                if let progress = update.progress { next.progress = progress }
                var data: [String: JSONValue] = [:]
                if let progress = update.progress { data["progress"] = .int(Int64(progress)) }
                if let message = update.message { data["message"] = .string(message) }
                if let details { data["details"] = details }
                events.append(EventDraft(type: .taskProgress, timestamp: now, data: data))
            }
        case .completed:
            finishRun(&next, now: now, reportedDuration: update.duration)
            next.status = .completed
            next.progress = 100
            next.result = update.result
            next.error = nil
            next.consecutiveFailures = 0
            var data: [String: JSONValue] = [
                "status": "success", "duration": .double(next.duration ?? 0), "result": update.result ?? .null,
            ]
            if let message = update.message { data["message"] = .string(message) }
            if let details { data["details"] = details }
            events.append(EventDraft(type: .taskCompleted, timestamp: now, data: data))
            events += requeueIfResident(&next, now: now)
        case .failed:
            let error = update.error ?? update.message.map { .string($0) } ?? .null
            if update.leaseToken != nil, update.retry != false, task.status == .running, !task.stay,
                task.attempts < task.maxAttempts
            {
                var data: [String: JSONValue] = [:]
                if let details { data["details"] = details }
                return scheduleRetry(
                    task, reason: "retry", error: error, extra: data, now: now, reportedDuration: update.duration,
                    jitter: jitter)
            }
            var extra: [String: JSONValue] = ["reason": "reported", "attempts": .int(Int64(task.attempts))]
            if let details { extra["details"] = details }
            return fail(task, error: error, extra: extra, now: now, reportedDuration: update.duration, jitter: jitter)
        case .cancelled:
            next.status = .cancelled
            next.cancelRequested = task.status == .running
            if task.status == .running { finishRun(&next, now: now) } else { next.completedAt = now }
            if task.status == .scheduled { next.readyAt = now }
            var data: [String: JSONValue] = ["previous_status": .string(task.status.rawValue)]
            if let message = update.message { data["reason"] = .string(message) }
            events.append(EventDraft(type: .taskCancelled, timestamp: now, data: data))
        case .queued, .scheduled:
            throw OrchError.invalidParameter("status", "must be one of running, completed, failed, cancelled")
        }
        next.updatedAt = now
        return TaskTransition(task: next, events: events)
    }

    /// A worker's heartbeat: extends the lease by `lease` seconds (default: the claim's lease).
    /// A cancelled task answers with `cancelRequested` and keeps its state. Throws 409 when the
    /// worker or token is not the task's current lease.
    public static func heartbeat(
        _ task: TaskRecord, workerID: String, leaseToken: String, lease: Int?, now: Date
    ) throws(OrchError) -> TaskTransition {
        guard task.leaseToken == leaseToken, task.workerID == workerID,
            task.status == .running || (task.status == .cancelled && task.cancelRequested)
        else {
            throw OrchError.conflict(
                "The lease on task \(task.id) is not held by this worker or token",
                details: ["task_id": .string(task.id), "reason": "stale_lease", "status": .string(task.status.rawValue)])
        }
        guard task.status == .running else { return TaskTransition(task: task, events: []) }
        var next = task
        let seconds = lease ?? task.leaseSeconds ?? 30
        next.leaseExpiresAt = now.addingTimeInterval(TimeInterval(seconds))
        if lease != nil { next.leaseSeconds = seconds }
        return TaskTransition(task: next, events: [])
    }

    /// What happens to a running task whose lease ran out or that ran past its timeout at `now`;
    /// `nil` when neither is the case.
    ///
    /// - A timeout fails the task with `reason: "timeout"`.
    /// - A lost lease retries the task after its backoff (`task.requeued` with `reason:
    ///   "lease_expired"`) while it has attempts left, otherwise fails it with `reason:
    ///   "lease_expired"`.
    public static func expire(_ task: TaskRecord, now: Date, jitter: Double = .random(in: -1...1)) -> TaskTransition? {
        guard task.status == .running else { return nil }
        if let timeoutAt = task.timeoutAt, timeoutAt <= now {
            return fail(
                task, error: .string("Task exceeded its timeout of \(task.timeout) s"),
                extra: ["reason": "timeout", "timeout": .int(Int64(task.timeout))], now: now)
        }
        guard let leaseExpiresAt = task.leaseExpiresAt, leaseExpiresAt <= now else { return nil }
        if task.attempts < task.maxAttempts {
            return scheduleRetry(
                task, reason: "lease_expired", error: .string("Lease expired"),
                extra: ["worker_id": task.workerID.map { .string($0) } ?? .null], now: now, jitter: jitter)
        }
        return fail(
            task, error: .string("Lease expired after \(task.attempts) attempts"),
            extra: ["reason": "lease_expired", "attempts": .int(Int64(task.attempts))], now: now, jitter: jitter)
    }

    /// Ends a run that will be tried again: `scheduled` for the backoff before retry number
    /// `attempts` (`task.requeued` with `reason`, `attempt`, `error`, `ready_at`).
    static func scheduleRetry(
        _ task: TaskRecord, reason: JSONValue, error: JSONValue, extra: [String: JSONValue], now: Date,
        reportedDuration: Double? = nil, jitter: Double
    ) -> TaskTransition {
        var next = task
        finishRun(&next, now: now, reportedDuration: reportedDuration)
        let delay = task.retryPolicy.delay(beforeRetry: task.attempts, jitter: jitter)
        next.status = .scheduled
        next.error = error
        next.readyAt = now.addingTimeInterval(delay)
        next.startedAt = nil
        next.completedAt = nil
        next.progress = nil
        next.updatedAt = now
        var data: [String: JSONValue] = [
            "reason": reason, "attempt": .int(Int64(task.attempts)), "attempts": .int(Int64(task.attempts)),
            "max_attempts": .int(Int64(task.maxAttempts)), "error": error, "delay": .double(delay),
            "ready_at": .string(Timestamp.format(next.readyAt)),
        ]
        data.merge(extra) { _, new in new }
        return TaskTransition(task: next, events: [EventDraft(type: .taskRequeued, timestamp: now, data: data)])
    }

    // MARK: Pieces

    /// Fails a task (`task.failed` with `reason` and friends in `extra`), then requeues it if it
    /// is a `stay` task.
    static func fail(
        _ task: TaskRecord, error: JSONValue, extra: [String: JSONValue], now: Date, reportedDuration: Double? = nil,
        jitter: Double = 0
    ) -> TaskTransition {
        var next = task
        finishRun(&next, now: now, reportedDuration: reportedDuration)
        next.status = .failed
        next.error = error
        next.consecutiveFailures += 1
        next.updatedAt = now
        var data: [String: JSONValue] = ["status": "failure", "duration": .double(next.duration ?? 0), "error": error]
        data.merge(extra) { _, new in new }
        var events = [EventDraft(type: .taskFailed, timestamp: now, data: data)]
        events += requeueIfResident(&next, now: now, jitter: jitter)
        return TaskTransition(task: next, events: events)
    }

    /// Starts a run: `running`, one more attempt, `task.started`.
    static func start(_ task: inout TaskRecord, workerID: String?, now: Date) -> EventDraft {
        task.status = .running
        task.attempts += 1
        task.workerID = workerID
        task.startedAt = now
        task.completedAt = nil
        task.duration = nil
        task.progress = nil
        task.cancelRequested = false
        task.updatedAt = now
        return EventDraft(
            type: .taskStarted, timestamp: now,
            data: [
                "worker_id": workerID.map { .string($0) } ?? .null, "start_time": .string(Timestamp.format(now)),
                "attempt": .int(Int64(task.attempts)),
            ])
    }

    /// Ends a run at `now`: completion time and duration (the reported one when given, else
    /// measured from the start; zero when it never started).
    static func finishRun(_ task: inout TaskRecord, now: Date, reportedDuration: Double? = nil) {
        let started = task.startedAt ?? now
        task.completedAt = now
        task.duration = reportedDuration.map { max(0, $0) } ?? max(0, now.timeIntervalSince(started))
        if task.status != .cancelled { clearLease(&task) }
    }

    static func clearLease(_ task: inout TaskRecord) {
        task.leaseToken = nil
        task.leaseExpiresAt = nil
        task.leaseSeconds = nil
    }

    /// For a `stay` task that just completed or failed: back to `queued` after a completion,
    /// `scheduled` for its retry policy's backoff (counted in failures in a row) after a failure.
    static func requeueIfResident(_ task: inout TaskRecord, now: Date, jitter: Double = 0) -> [EventDraft] {
        guard task.stay, task.status == .completed || task.status == .failed else { return [] }
        let delay = task.consecutiveFailures == 0
            ? 0 : task.retryPolicy.delay(beforeRetry: task.consecutiveFailures, jitter: jitter)
        let previous = task.status
        clearLease(&task)
        task.status = delay > 0 ? .scheduled : .queued
        task.attempts = 0
        task.readyAt = now.addingTimeInterval(delay)
        task.updatedAt = now
        return [
            EventDraft(
                type: .taskRequeued, timestamp: now,
                data: [
                    "reason": "stay", "previous_status": .string(previous.rawValue), "delay": .double(delay),
                    "ready_at": .string(Timestamp.format(task.readyAt)),
                ])
        ]
    }

    static func requireMove(_ task: TaskRecord, to status: TaskStatus) throws(OrchError) {
        guard canMove(from: task.status, to: status) else {
            if task.status.isTerminal {
                throw conflict(task, "is \(task.status.rawValue); a finished task cannot change")
            }
            throw conflict(task, "cannot move from \(task.status.rawValue) to \(status.rawValue)")
        }
    }

    static func conflict(_ task: TaskRecord, _ reason: String) -> OrchError {
        .conflict(
            "Task \(task.id) \(reason)",
            details: ["task_id": .string(task.id), "status": .string(task.status.rawValue)])
    }
}
