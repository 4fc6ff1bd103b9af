import Foundation

/// What each firing of a schedule dispatches (as `POST /dispatch` takes it, less the core).
public struct ScheduleTaskTemplate: Codable, Sendable, Hashable {
    public var priority: Int
    public var timeout: Int
    public var stay: Bool
    public var maxAttempts: Int
    public var retryPolicy: RetryPolicy?
    /// Each task's metadata: this, and `schedule_id`.
    public var metadata: [String: JSONValue]

    public init(
        priority: Int = 1, timeout: Int = 300, stay: Bool = false, maxAttempts: Int = 3, retryPolicy: RetryPolicy? = nil,
        metadata: [String: JSONValue] = [:]
    ) {
        self.priority = priority
        self.timeout = timeout
        self.stay = stay
        self.maxAttempts = maxAttempts
        self.retryPolicy = retryPolicy
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case priority, timeout, stay
        case maxAttempts = "max_attempts"
        case retryPolicy = "retry_policy"
        case metadata
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        priority = try container.decodeIntegerIfPresent(forKey: .priority) ?? 1
        timeout = try container.decodeIntegerIfPresent(forKey: .timeout) ?? 300
        stay = try container.decodeIfPresent(Bool.self, forKey: .stay) ?? false
        maxAttempts = try container.decodeIntegerIfPresent(forKey: .maxAttempts) ?? 3
        retryPolicy = try container.decodeIfPresent(RetryPolicy.self, forKey: .retryPolicy)
        metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(priority, forKey: .priority)
        try container.encode(timeout, forKey: .timeout)
        try container.encode(stay, forKey: .stay)
        try container.encode(maxAttempts, forKey: .maxAttempts)
        try container.encode(retryPolicy ?? .standard, forKey: .retryPolicy)
        try container.encode(metadata, forKey: .metadata)
    }
}

/// `POST /schedules` request body: `cron` or `every`, not both.
public struct CreateScheduleRequest: Codable, Sendable, Hashable {
    public var name: String
    public var coreID: String
    /// A five-field cron expression or a macro such as `@hourly`, evaluated in `timezone`.
    public var cron: String?
    /// An interval such as `30s`, `5m`, `1h30m` (at least 1 s).
    public var every: String?
    /// An IANA zone name; default `UTC`.
    public var timezone: String
    public var task: ScheduleTaskTemplate
    public var paused: Bool

    public init(
        name: String, coreID: String, cron: String? = nil, every: String? = nil, timezone: String = "UTC",
        task: ScheduleTaskTemplate = ScheduleTaskTemplate(), paused: Bool = false
    ) {
        self.name = name
        self.coreID = coreID
        self.cron = cron
        self.every = every
        self.timezone = timezone
        self.task = task
        self.paused = paused
    }

    enum CodingKeys: String, CodingKey {
        case name
        case coreID = "core_id"
        case cron, every, timezone, task, paused
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        coreID = try container.decode(String.self, forKey: .coreID)
        cron = try container.decodeIfPresent(String.self, forKey: .cron)
        every = try container.decodeIfPresent(String.self, forKey: .every)
        timezone = try container.decodeIfPresent(String.self, forKey: .timezone) ?? "UTC"
        task = try container.decodeIfPresent(ScheduleTaskTemplate.self, forKey: .task) ?? ScheduleTaskTemplate()
        paused = try container.decodeIfPresent(Bool.self, forKey: .paused) ?? false
    }
}

/// `PATCH /schedules/{schedule_id}` request body: the fields given change. `cron` or `every`
/// replaces the timing (the other is dropped); giving both is refused.
public struct UpdateScheduleRequest: Codable, Sendable, Hashable {
    public var name: String?
    public var coreID: String?
    public var cron: String?
    public var every: String?
    public var timezone: String?
    public var task: ScheduleTaskTemplate?
    public var paused: Bool?

    public init(
        name: String? = nil, coreID: String? = nil, cron: String? = nil, every: String? = nil, timezone: String? = nil,
        task: ScheduleTaskTemplate? = nil, paused: Bool? = nil
    ) {
        self.name = name
        self.coreID = coreID
        self.cron = cron
        self.every = every
        self.timezone = timezone
        self.task = task
        self.paused = paused
    }

    enum CodingKeys: String, CodingKey {
        case name
        case coreID = "core_id"
        case cron, every, timezone, task, paused
    }
}

/// A schedule as the API shows it.
public struct Schedule: Codable, Sendable, Hashable {
    public var scheduleID: String
    public var name: String
    public var coreID: String
    public var cron: String?
    public var every: String?
    public var timezone: String
    public var task: ScheduleTaskTemplate
    public var paused: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// The next firing; `null` while paused.
    public var nextRunAt: Date?
    public var lastRunAt: Date?
    /// The task the last firing dispatched.
    public var lastTaskID: String?

    public init(
        scheduleID: String, name: String, coreID: String, cron: String?, every: String?, timezone: String,
        task: ScheduleTaskTemplate, paused: Bool, createdAt: Date, updatedAt: Date, nextRunAt: Date?, lastRunAt: Date?,
        lastTaskID: String?
    ) {
        self.scheduleID = scheduleID
        self.name = name
        self.coreID = coreID
        self.cron = cron
        self.every = every
        self.timezone = timezone
        self.task = task
        self.paused = paused
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.lastTaskID = lastTaskID
    }

    enum CodingKeys: String, CodingKey {
        case scheduleID = "schedule_id"
        case name
        case coreID = "core_id"
        case cron, every, timezone, task, paused
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case nextRunAt = "next_run_at"
        case lastRunAt = "last_run_at"
        case lastTaskID = "last_task_id"
    }

    /// Every field is written, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scheduleID, forKey: .scheduleID)
        try container.encode(name, forKey: .name)
        try container.encode(coreID, forKey: .coreID)
        try container.encode(cron, forKey: .cron)
        try container.encode(every, forKey: .every)
        try container.encode(timezone, forKey: .timezone)
        try container.encode(task, forKey: .task)
        try container.encode(paused, forKey: .paused)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(nextRunAt, forKey: .nextRunAt)
        try container.encode(lastRunAt, forKey: .lastRunAt)
        try container.encode(lastTaskID, forKey: .lastTaskID)
    }
}

/// `GET /schedules` response body.
public struct ScheduleList: Codable, Sendable, Hashable {
    public var totalSchedules: Int
    public var schedules: [Schedule]
    public var pagination: Pagination

    public init(totalSchedules: Int, schedules: [Schedule], pagination: Pagination) {
        self.totalSchedules = totalSchedules
        self.schedules = schedules
        self.pagination = pagination
    }

    enum CodingKeys: String, CodingKey {
        case totalSchedules = "total_schedules"
        case schedules, pagination
    }
}
