import Foundation

/// `POST /dispatch` request body.
///
/// `coreId` is required; `core_id` is accepted in its place. Ranges are checked by the server
/// (see `TaskRules`), so a decoded request may still be refused.
public struct DispatchRequest: Codable, Sendable, Hashable {
    /// The queue to dispatch to: 1-128 characters of `[A-Za-z0-9_.:-]`.
    public var coreID: String
    /// 1-10, higher first. Default 1.
    public var priority: Int
    /// Execution limit in seconds, 1-86400. Default 300.
    public var timeout: Int
    /// A resident task (see ``OrchTask/stay``). Default false.
    public var stay: Bool
    /// Starts allowed before a lost lease fails the task, 1-100. Default 3.
    public var maxAttempts: Int
    /// Free-form, at most 64 KiB as JSON. `callback_url` here asks for a callback when the task ends.
    public var metadata: [String: JSONValue]
    /// Seconds from now before the task may run, 0 to one year; the task is `scheduled` until then.
    public var delay: Int?
    /// When the task may run (RFC 3339); a time in the past means now.
    /// Not together with `delay`.
    public var runAt: Date?
    /// The waits between retries after failures (default ``RetryPolicy/standard``).
    public var retryPolicy: RetryPolicy?

    public init(
        coreID: String, priority: Int = 1, timeout: Int = 300, stay: Bool = false, maxAttempts: Int = 3,
        metadata: [String: JSONValue] = [:], delay: Int? = nil, runAt: Date? = nil, retryPolicy: RetryPolicy? = nil
    ) {
        self.coreID = coreID
        self.priority = priority
        self.timeout = timeout
        self.stay = stay
        self.maxAttempts = maxAttempts
        self.metadata = metadata
        self.delay = delay
        self.runAt = runAt
        self.retryPolicy = retryPolicy
    }

    enum CodingKeys: String, CodingKey {
        case coreId
        case core_id
        case priority, timeout, stay
        case maxAttempts = "max_attempts"
        case metadata, delay
        case runAt = "run_at"
        case retryPolicy = "retry_policy"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // Exactly one spelling; a key given as null counts as given (and fails as a string).
        switch (container.contains(.coreId), container.contains(.core_id)) {
        case (true, true):
            throw DecodingError.dataCorruptedError(
                forKey: .core_id, in: container, debugDescription: "give coreId or core_id, not both")
        case (true, false):
            coreID = try container.decode(String.self, forKey: .coreId)
        case (false, true):
            coreID = try container.decode(String.self, forKey: .core_id)
        case (false, false):
            throw DecodingError.keyNotFound(
                CodingKeys.coreId, .init(codingPath: container.codingPath, debugDescription: "coreId is required"))
        }
        priority = try container.decodeIntegerIfPresent(forKey: .priority) ?? 1
        timeout = try container.decodeIntegerIfPresent(forKey: .timeout) ?? 300
        stay = try container.decodeIfPresent(Bool.self, forKey: .stay) ?? false
        maxAttempts = try container.decodeIntegerIfPresent(forKey: .maxAttempts) ?? 3
        metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata) ?? [:]
        delay = try container.decodeIntegerIfPresent(forKey: .delay)
        // Both keys given is refused even when one is null: exactly what the schema's `not` says.
        if container.contains(.delay), container.contains(.runAt) {
            throw DecodingError.dataCorruptedError(
                forKey: .runAt, in: container, debugDescription: "give delay or run_at, not both")
        }
        if let text = try container.decodeIfPresent(String.self, forKey: .runAt) {
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .runAt, in: container, debugDescription: "must be an RFC 3339 date-time")
            }
            runAt = date
        } else {
            runAt = nil
        }
        retryPolicy = try container.decodeIfPresent(RetryPolicy.self, forKey: .retryPolicy)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(coreID, forKey: .coreId)
        try container.encode(priority, forKey: .priority)
        try container.encode(timeout, forKey: .timeout)
        try container.encode(stay, forKey: .stay)
        try container.encode(maxAttempts, forKey: .maxAttempts)
        try container.encode(metadata, forKey: .metadata)
        try container.encodeIfPresent(delay, forKey: .delay)
        try container.encodeIfPresent(runAt.map(Timestamp.format), forKey: .runAt)
        try container.encodeIfPresent(retryPolicy, forKey: .retryPolicy)
    }
}

/// `POST /dispatch` response body (202 for a new task, 200 for an idempotent repeat).
public struct DispatchResponse: Codable, Sendable, Hashable {
    public var taskID: String
    /// The task's status now (`queued` for a new task, `scheduled` for a delayed one).
    public var status: TaskStatus
    public var coreID: String
    public var priority: Int
    public var timeout: Int
    public var createdAt: Date
    /// When a worker is expected to start the task (see the README for how it is estimated).
    public var estimatedStart: Date
    /// 1-based place in the core's claim order; 0 when the task is not queued (yet).
    public var queuePosition: Int
    /// When the task may run: its `run_at` when delayed, else when it was dispatched.
    public var runAt: Date?

    public init(
        taskID: String, status: TaskStatus, coreID: String, priority: Int, timeout: Int, createdAt: Date,
        estimatedStart: Date, queuePosition: Int, runAt: Date? = nil
    ) {
        self.runAt = runAt
        self.taskID = taskID
        self.status = status
        self.coreID = coreID
        self.priority = priority
        self.timeout = timeout
        self.createdAt = createdAt
        self.estimatedStart = estimatedStart
        self.queuePosition = queuePosition
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case status
        case coreID = "core_id"
        case priority, timeout
        case createdAt = "created_at"
        case estimatedStart = "estimated_start"
        case queuePosition = "queue_position"
        case runAt = "run_at"
    }
}

/// `POST /dispatch/batch` request body: 1 to 1,000 tasks, each as `POST /dispatch` takes it.
public struct DispatchBatchRequest: Codable, Sendable, Hashable {
    public var tasks: [DispatchRequest]

    public init(tasks: [DispatchRequest]) {
        self.tasks = tasks
    }
}

/// `POST /dispatch/batch` response body (202): each task answered as `POST /dispatch` answers
/// it, in the order of the request.
public struct DispatchBatchResponse: Codable, Sendable, Hashable {
    public var tasks: [DispatchResponse]

    public init(tasks: [DispatchResponse]) {
        self.tasks = tasks
    }
}
