import Foundation

/// A task as the API shows it (`GET /tasks`, `GET /tasks/{task_id}`).
public struct OrchTask: Codable, Sendable, Hashable {
    /// `task-<uuid>`.
    public var taskID: String
    /// The queue ("core") the task was dispatched to.
    public var coreID: String
    public var status: TaskStatus
    /// 1-10, higher first.
    public var priority: Int
    /// Execution limit in seconds, counted from the start.
    public var timeout: Int
    /// A resident task: back to `queued` after it completes or fails, until cancelled.
    public var stay: Bool
    /// How many times the task has been started.
    public var attempts: Int
    /// Starts allowed before a lost lease fails the task.
    public var maxAttempts: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var completedAt: Date?
    /// Seconds from start to end of the last run.
    public var duration: Double?
    /// 0-100, as last reported.
    public var progress: Int?
    /// The worker running (or that last ran) the task.
    public var workerID: String?
    public var metadata: [String: JSONValue]
    /// What the last completed run produced.
    public var result: JSONValue?
    /// Why the last run failed.
    public var error: JSONValue?
    /// When the task became (or, while `scheduled`, becomes) claimable.
    public var runAt: Date?
    /// The waits between retries.
    public var retryPolicy: RetryPolicy

    public init(
        taskID: String, coreID: String, status: TaskStatus, priority: Int, timeout: Int, stay: Bool, attempts: Int,
        maxAttempts: Int, createdAt: Date, updatedAt: Date, startedAt: Date?, completedAt: Date?, duration: Double?,
        progress: Int?, workerID: String?, metadata: [String: JSONValue], result: JSONValue?, error: JSONValue?,
        runAt: Date? = nil, retryPolicy: RetryPolicy = .standard
    ) {
        self.runAt = runAt
        self.retryPolicy = retryPolicy
        self.taskID = taskID
        self.coreID = coreID
        self.status = status
        self.priority = priority
        self.timeout = timeout
        self.stay = stay
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.duration = duration
        self.progress = progress
        self.workerID = workerID
        self.metadata = metadata
        self.result = result
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case coreID = "core_id"
        case status, priority, timeout, stay, attempts
        case maxAttempts = "max_attempts"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case startedAt = "started_at"
        case completedAt = "completed_at"
        case duration, progress
        case workerID = "worker_id"
        case metadata, result, error
        case runAt = "run_at"
        case retryPolicy = "retry_policy"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        taskID = try container.decode(String.self, forKey: .taskID)
        coreID = try container.decode(String.self, forKey: .coreID)
        status = try container.decode(TaskStatus.self, forKey: .status)
        priority = try container.decode(Int.self, forKey: .priority)
        timeout = try container.decode(Int.self, forKey: .timeout)
        stay = try container.decodeIfPresent(Bool.self, forKey: .stay) ?? false
        attempts = try container.decodeIfPresent(Int.self, forKey: .attempts) ?? 0
        maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? 3
        createdAt = try container.decode(Date.self, forKey: .createdAt)
        updatedAt = try container.decode(Date.self, forKey: .updatedAt)
        startedAt = try container.decodeIfPresent(Date.self, forKey: .startedAt)
        completedAt = try container.decodeIfPresent(Date.self, forKey: .completedAt)
        duration = try container.decodeIfPresent(Double.self, forKey: .duration)
        progress = try container.decodeIfPresent(Int.self, forKey: .progress)
        workerID = try container.decodeIfPresent(String.self, forKey: .workerID)
        metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata) ?? [:]
        result = try container.decodeIfPresent(JSONValue.self, forKey: .result)
        error = try container.decodeIfPresent(JSONValue.self, forKey: .error)
        runAt = try container.decodeIfPresent(Date.self, forKey: .runAt)
        retryPolicy = try container.decodeIfPresent(RetryPolicy.self, forKey: .retryPolicy) ?? .standard
    }

    /// Every field is written, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskID, forKey: .taskID)
        try container.encode(coreID, forKey: .coreID)
        try container.encode(status, forKey: .status)
        try container.encode(priority, forKey: .priority)
        try container.encode(timeout, forKey: .timeout)
        try container.encode(stay, forKey: .stay)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(maxAttempts, forKey: .maxAttempts)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(completedAt, forKey: .completedAt)
        try container.encode(duration, forKey: .duration)
        try container.encode(progress, forKey: .progress)
        try container.encode(workerID, forKey: .workerID)
        try container.encode(metadata, forKey: .metadata)
        try container.encode(result, forKey: .result)
        try container.encode(error, forKey: .error)
        try container.encode(runAt, forKey: .runAt)
        try container.encode(retryPolicy, forKey: .retryPolicy)
    }
}

/// `GET /tasks` response body.
public struct TaskList: Codable, Sendable, Hashable {
    public var totalTasks: Int
    public var tasks: [OrchTask]
    public var pagination: Pagination

    public init(totalTasks: Int, tasks: [OrchTask], pagination: Pagination) {
        self.totalTasks = totalTasks
        self.tasks = tasks
        self.pagination = pagination
    }

    enum CodingKeys: String, CodingKey {
        case totalTasks = "total_tasks"
        case tasks, pagination
    }
}
