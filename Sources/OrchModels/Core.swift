import Foundation

/// A core as `GET /cores` and `GET /cores/{core_id}` show it.
public struct CoreInfo: Codable, Sendable, Hashable {
    public var coreID: String
    /// Tasks waiting to be claimed.
    public var queued: Int
    /// Tasks waiting for their `run_at` (delayed, or backing off before a retry).
    public var scheduled: Int
    public var running: Int
    /// A paused core takes dispatches but hands out nothing.
    public var paused: Bool
    /// The most of the core's tasks that may run at once, over every node; `nil` for no cap.
    public var maxRunning: Int?
    /// Workers that claimed on the core in the last minute or are running one of its tasks.
    public var activeWorkers: Int
    /// When the longest-waiting queued task became claimable, `nil` with none queued.
    public var oldestQueuedAt: Date?
    /// Seconds since then.
    public var oldestQueuedAge: Double?

    public init(
        coreID: String, queued: Int, scheduled: Int, running: Int, paused: Bool, maxRunning: Int?, activeWorkers: Int,
        oldestQueuedAt: Date?, oldestQueuedAge: Double?
    ) {
        self.coreID = coreID
        self.queued = queued
        self.scheduled = scheduled
        self.running = running
        self.paused = paused
        self.maxRunning = maxRunning
        self.activeWorkers = activeWorkers
        self.oldestQueuedAt = oldestQueuedAt
        self.oldestQueuedAge = oldestQueuedAge
    }

    enum CodingKeys: String, CodingKey {
        case coreID = "core_id"
        case queued, scheduled, running, paused
        case maxRunning = "max_running"
        case activeWorkers = "active_workers"
        case oldestQueuedAt = "oldest_queued_at"
        case oldestQueuedAge = "oldest_queued_age"
    }

    /// Every field is written, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(coreID, forKey: .coreID)
        try container.encode(queued, forKey: .queued)
        try container.encode(scheduled, forKey: .scheduled)
        try container.encode(running, forKey: .running)
        try container.encode(paused, forKey: .paused)
        try container.encode(maxRunning, forKey: .maxRunning)
        try container.encode(activeWorkers, forKey: .activeWorkers)
        try container.encode(oldestQueuedAt, forKey: .oldestQueuedAt)
        try container.encode(oldestQueuedAge, forKey: .oldestQueuedAge)
    }
}

/// `GET /cores` response body.
public struct CoreList: Codable, Sendable, Hashable {
    public var cores: [CoreInfo]

    public init(cores: [CoreInfo]) {
        self.cores = cores
    }
}

/// `PATCH /cores/{core_id}` request body: the fields given change, the others stay.
public struct CoreUpdateRequest: Codable, Sendable, Hashable {
    public var paused: Bool?
    /// `.some(nil)` (`"max_running": null`) removes the cap.
    public var maxRunning: Int??

    public init(paused: Bool? = nil, maxRunning: Int?? = nil) {
        self.paused = paused
        self.maxRunning = maxRunning
    }

    enum CodingKeys: String, CodingKey {
        case paused
        case maxRunning = "max_running"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        paused = try container.decodeIfPresent(Bool.self, forKey: .paused)
        if container.contains(.maxRunning) {
            maxRunning = .some(try container.decodeIntegerIfPresent(forKey: .maxRunning))
        } else {
            maxRunning = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(paused, forKey: .paused)
        if let maxRunning {
            if let cap = maxRunning { try container.encode(cap, forKey: .maxRunning) } else { try container.encodeNil(forKey: .maxRunning) }
        }
    }
}

/// `GET /stats/tasks`: tasks finished per minute over the last hour (the dashboard's charts).
public struct TaskStats: Codable, Sendable, Hashable {
    /// The core the figures are for; nil for every core.
    public var coreID: String?
    public var windowMinutes: Int
    public var completed: Int
    /// Final failures (a failure that is retried is not one).
    public var failed: Int
    /// The 95th percentile run time over the window, seconds (a histogram bucket's bound).
    public var p95Seconds: Double?
    /// One entry per minute, oldest first, the current minute last.
    public var minutes: [MinuteFigures]

    public struct MinuteFigures: Codable, Sendable, Hashable {
        public var minute: Date
        public var completed: Int
        public var failed: Int
        public var p95Seconds: Double?

        public init(minute: Date, completed: Int, failed: Int, p95Seconds: Double?) {
            self.minute = minute
            self.completed = completed
            self.failed = failed
            self.p95Seconds = p95Seconds
        }

        enum CodingKeys: String, CodingKey {
            case minute, completed, failed
            case p95Seconds = "p95_seconds"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(minute, forKey: .minute)
            try container.encode(completed, forKey: .completed)
            try container.encode(failed, forKey: .failed)
            try container.encode(p95Seconds, forKey: .p95Seconds)
        }
    }

    public init(coreID: String?, windowMinutes: Int, completed: Int, failed: Int, p95Seconds: Double?, minutes: [MinuteFigures]) {
        self.coreID = coreID
        self.windowMinutes = windowMinutes
        self.completed = completed
        self.failed = failed
        self.p95Seconds = p95Seconds
        self.minutes = minutes
    }

    enum CodingKeys: String, CodingKey {
        case coreID = "core_id"
        case windowMinutes = "window_minutes"
        case completed, failed
        case p95Seconds = "p95_seconds"
        case minutes
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(coreID, forKey: .coreID)
        try container.encode(windowMinutes, forKey: .windowMinutes)
        try container.encode(completed, forKey: .completed)
        try container.encode(failed, forKey: .failed)
        try container.encode(p95Seconds, forKey: .p95Seconds)
        try container.encode(minutes, forKey: .minutes)
    }
}

/// `GET /alerts`: the firing `system.alert` events, newest first.
public struct AlertList: Codable, Sendable, Hashable {
    public var alerts: [TaskEvent]

    public init(alerts: [TaskEvent]) {
        self.alerts = alerts
    }
}
