import Foundation
import OrchModels

/// A task with everything the server keeps about it, lease included.
public struct TaskRecord: Sendable, Hashable {
    public var id: String
    public var coreID: String
    public var status: TaskStatus
    public var priority: Int
    public var timeout: Int
    public var stay: Bool
    public var attempts: Int
    public var maxAttempts: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var completedAt: Date?
    public var duration: Double?
    public var progress: Int?
    public var workerID: String?
    public var metadata: [String: JSONValue]
    public var result: JSONValue?
    public var error: JSONValue?
    /// When the task may be claimed: a `scheduled` task becomes `queued` then; a queued task's
    /// place among those of its priority.
    public var readyAt: Date
    /// The waits between retries.
    public var retryPolicy: RetryPolicy
    /// The current claim's token; kept after a cancel so the worker's heartbeat can be told.
    public var leaseToken: String?
    public var leaseExpiresAt: Date?
    /// The lease length the claim asked for, used when a heartbeat gives none.
    public var leaseSeconds: Int?
    /// Set when a running task is cancelled; reported to the worker's next heartbeat.
    public var cancelRequested: Bool
    /// Failures in a row of a `stay` task, which set its backoff.
    public var consecutiveFailures: Int
    /// The user who dispatched the task.
    public var createdBy: String?

    public init(
        id: String, coreID: String, status: TaskStatus = .queued, priority: Int, timeout: Int, stay: Bool,
        attempts: Int = 0, maxAttempts: Int, createdAt: Date, updatedAt: Date? = nil, startedAt: Date? = nil,
        completedAt: Date? = nil, duration: Double? = nil, progress: Int? = nil, workerID: String? = nil,
        metadata: [String: JSONValue] = [:], result: JSONValue? = nil, error: JSONValue? = nil, readyAt: Date? = nil,
        leaseToken: String? = nil, leaseExpiresAt: Date? = nil, leaseSeconds: Int? = nil, cancelRequested: Bool = false,
        consecutiveFailures: Int = 0, createdBy: String? = nil, retryPolicy: RetryPolicy = .standard
    ) {
        self.retryPolicy = retryPolicy
        self.id = id
        self.coreID = coreID
        self.status = status
        self.priority = priority
        self.timeout = timeout
        self.stay = stay
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.duration = duration
        self.progress = progress
        self.workerID = workerID
        self.metadata = metadata
        self.result = result
        self.error = error
        self.readyAt = readyAt ?? createdAt
        self.leaseToken = leaseToken
        self.leaseExpiresAt = leaseExpiresAt
        self.leaseSeconds = leaseSeconds
        self.cancelRequested = cancelRequested
        self.consecutiveFailures = consecutiveFailures
        self.createdBy = createdBy
    }

    /// When a running task times out: its start plus its timeout.
    public var timeoutAt: Date? {
        startedAt.map { $0.addingTimeInterval(TimeInterval(timeout)) }
    }

    /// The task as the API shows it (no lease).
    public var apiValue: OrchTask {
        OrchTask(
            taskID: id, coreID: coreID, status: status, priority: priority, timeout: timeout, stay: stay,
            attempts: attempts, maxAttempts: maxAttempts, createdAt: createdAt, updatedAt: updatedAt,
            startedAt: startedAt, completedAt: completedAt, duration: duration, progress: progress, workerID: workerID,
            metadata: metadata, result: result, error: error, runAt: readyAt, retryPolicy: retryPolicy)
    }
}

/// An event about to be stored; the store gives it its sequence number.
public struct EventDraft: Sendable, Hashable {
    public var type: EventType
    public var timestamp: Date
    public var data: [String: JSONValue]

    public init(type: EventType, timestamp: Date, data: [String: JSONValue]) {
        self.type = type
        self.timestamp = timestamp
        self.data = data
    }
}

/// A stored event.
public struct EventRecord: Sendable, Hashable {
    /// Global, strictly increasing.
    public var sequence: Int64
    public var taskID: String?
    /// The core of the event's task, for filtering streams by core.
    public var coreID: String?
    public var type: EventType
    public var timestamp: Date
    public var data: [String: JSONValue]

    public init(
        sequence: Int64, taskID: String?, coreID: String?, type: EventType, timestamp: Date, data: [String: JSONValue]
    ) {
        self.sequence = sequence
        self.taskID = taskID
        self.coreID = coreID
        self.type = type
        self.timestamp = timestamp
        self.data = data
    }

    /// The event as the API shows it.
    public var apiValue: TaskEvent {
        TaskEvent(eventID: "event-\(sequence)", taskID: taskID, eventType: type.rawValue, timestamp: timestamp, data: data)
    }
}

/// A task's new state and the events that describe the change, stored together in one
/// transaction.
public struct TaskTransition: Sendable, Hashable {
    public var task: TaskRecord
    public var events: [EventDraft]

    public init(task: TaskRecord, events: [EventDraft]) {
        self.task = task
        self.events = events
    }
}
