import Foundation
import OrchModels

/// The task state machine: every change a task can go through, as pure functions from the
/// current record to a ``TaskTransition`` (the new record and the events describing the change).
///
/// Allowed moves (see ``canMove(from:to:)``):
///
/// | from | to |
/// | --- | --- |
/// | `queued` | `running`, `completed`, `failed`, `cancelled` |
/// | `running` | `running` (progress), `completed`, `failed`, `cancelled`, `queued` (lease lost, `stay`) |
/// | `completed`, `failed`, `cancelled` | nothing (409 `RESOURCE_CONFLICT`) |
///
/// A `stay` task that completes or fails goes back to `queued` in the same transition
/// (`task.requeued`), after a failure with a delay of 2^(failures-1) seconds, at most 5 minutes.
public enum TaskLifecycle {
    /// The longest delay before a failed `stay` task runs again.
    public static let maximumStayBackoff: TimeInterval = 300

    /// Whether a task may move from `from` to `to`.
    public static func canMove(from: TaskStatus, to: TaskStatus) -> Bool {
        switch (from, to) {
        case (.queued, .running), (.queued, .completed), (.queued, .failed), (.queued, .cancelled):
            true
        case (.running, .running), (.running, .completed), (.running, .failed), (.running, .cancelled),
            (.running, .queued):
            true
        default:
            false
        }
    }

    /// A new task and its `task.created` event.
    public static func dispatch(
        _ request: DispatchRequest, id: String, createdBy: String?, now: Date
    ) -> TaskTransition {
        let task = TaskRecord(
            id: id, coreID: request.coreID, priority: request.priority, timeout: request.timeout, stay: request.stay,
            maxAttempts: request.maxAttempts, createdAt: now, metadata: request.metadata, createdBy: createdBy)
        let event = EventDraft(
            type: .taskCreated, timestamp: now,
            data: [
                "core_id": .string(request.coreID), "priority": .int(Int64(request.priority)),
                "timeout": .int(Int64(request.timeout)), "stay": .bool(request.stay),
                "max_attempts": .int(Int64(request.maxAttempts)),
            ])
        return TaskTransition(task: task, events: [event])
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
    /// `lease_token` that is not the task's current one.
    public static func update(_ task: TaskRecord, with update: StatusUpdateRequest, now: Date) throws(OrchError)
        -> TaskTransition
    {
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
            var extra: [String: JSONValue] = ["reason": "reported"]
            if let details { extra["details"] = details }
            let error = update.error ?? update.message.map { .string($0) } ?? .null
            return fail(task, error: error, extra: extra, now: now, reportedDuration: update.duration)
        case .cancelled:
            next.status = .cancelled
            next.cancelRequested = task.status == .running
            if task.status == .running { finishRun(&next, now: now) } else { next.completedAt = now }
            var data: [String: JSONValue] = ["previous_status": .string(task.status.rawValue)]
            if let message = update.message { data["reason"] = .string(message) }
            events.append(EventDraft(type: .taskCancelled, timestamp: now, data: data))
        case .queued:
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
    /// - A lost lease puts the task back in the queue (`task.requeued`) while it has attempts
    ///   left, otherwise fails it with `reason: "lease_expired"`.
    public static func expire(_ task: TaskRecord, now: Date) -> TaskTransition? {
        guard task.status == .running else { return nil }
        if let timeoutAt = task.timeoutAt, timeoutAt <= now {
            return fail(
                task, error: .string("Task exceeded its timeout of \(task.timeout) s"),
                extra: ["reason": "timeout", "timeout": .int(Int64(task.timeout))], now: now)
        }
        guard let leaseExpiresAt = task.leaseExpiresAt, leaseExpiresAt <= now else { return nil }
        if task.attempts < task.maxAttempts {
            var next = task
            let worker = task.workerID
            clearLease(&next)
            next.status = .queued
            next.readyAt = now
            next.startedAt = nil
            next.progress = nil
            next.updatedAt = now
            let event = EventDraft(
                type: .taskRequeued, timestamp: now,
                data: [
                    "reason": "lease_expired", "attempts": .int(Int64(task.attempts)),
                    "max_attempts": .int(Int64(task.maxAttempts)), "worker_id": worker.map { .string($0) } ?? .null,
                ])
            return TaskTransition(task: next, events: [event])
        }
        return fail(
            task, error: .string("Lease expired after \(task.attempts) attempts"),
            extra: ["reason": "lease_expired", "attempts": .int(Int64(task.attempts))], now: now)
    }

    // MARK: Pieces

    /// Fails a task (`task.failed` with `reason` and friends in `extra`), then requeues it if it
    /// is a `stay` task.
    static func fail(
        _ task: TaskRecord, error: JSONValue, extra: [String: JSONValue], now: Date, reportedDuration: Double? = nil
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
        events += requeueIfResident(&next, now: now)
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

    /// For a `stay` task that just completed or failed: back to `queued`, after a backoff
    /// following failures.
    static func requeueIfResident(_ task: inout TaskRecord, now: Date) -> [EventDraft] {
        guard task.stay, task.status == .completed || task.status == .failed else { return [] }
        let delay = task.consecutiveFailures == 0
            ? 0 : min(maximumStayBackoff, pow(2, Double(task.consecutiveFailures - 1)))
        let previous = task.status
        clearLease(&task)
        task.status = .queued
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
