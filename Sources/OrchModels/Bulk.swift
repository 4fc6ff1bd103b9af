import Foundation

/// `POST /tasks/cancel` and `POST /tasks/retry` request body: which tasks, and whether only to
/// count them. At least one filter is required; all given must hold.
public struct BulkTaskRequest: Codable, Sendable, Hashable {
    public var coreID: String?
    public var status: TaskStatus?
    public var priority: Int?
    /// Only tasks created before this time (exclusive).
    public var createdBefore: Date?
    /// Only tasks created after this time (exclusive).
    public var createdAfter: Date?
    /// Only these tasks, at most 1,000.
    public var taskIDs: [String]?
    /// Count the matching tasks and change nothing.
    public var dryRun: Bool

    public init(
        coreID: String? = nil, status: TaskStatus? = nil, priority: Int? = nil, createdBefore: Date? = nil,
        createdAfter: Date? = nil, taskIDs: [String]? = nil, dryRun: Bool = false
    ) {
        self.coreID = coreID
        self.status = status
        self.priority = priority
        self.createdBefore = createdBefore
        self.createdAfter = createdAfter
        self.taskIDs = taskIDs
        self.dryRun = dryRun
    }

    enum CodingKeys: String, CodingKey {
        case coreID = "core_id"
        case status, priority
        case createdBefore = "created_before"
        case createdAfter = "created_after"
        case taskIDs = "task_ids"
        case dryRun = "dry_run"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        coreID = try container.decodeIfPresent(String.self, forKey: .coreID)
        status = try container.decodeIfPresent(TaskStatus.self, forKey: .status)
        priority = try container.decodeIntegerIfPresent(forKey: .priority)
        createdBefore = try Self.date(container, .createdBefore)
        createdAfter = try Self.date(container, .createdAfter)
        taskIDs = try container.decodeIfPresent([String].self, forKey: .taskIDs)
        dryRun = try container.decodeIfPresent(Bool.self, forKey: .dryRun) ?? false
    }

    static func date(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Date? {
        guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "must be an RFC 3339 date-time")
        }
        return date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(coreID, forKey: .coreID)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(priority, forKey: .priority)
        try container.encodeIfPresent(createdBefore.map(Timestamp.format), forKey: .createdBefore)
        try container.encodeIfPresent(createdAfter.map(Timestamp.format), forKey: .createdAfter)
        try container.encodeIfPresent(taskIDs, forKey: .taskIDs)
        try container.encode(dryRun, forKey: .dryRun)
    }
}

/// `POST /tasks/cancel` and `POST /tasks/retry` response body.
public struct BulkTaskResponse: Codable, Sendable, Hashable {
    /// Tasks matching the filter.
    public var matched: Int
    /// Of those, how many the action changed (`cancelled` or `retried` on the wire); absent in
    /// a dry run.
    public var changed: Int?
    /// Of those, how many the action does not apply to (already finished, still running...).
    public var skipped: Int
    public var dryRun: Bool
    /// `cancelled` or `retried`: the wire name of ``changed``.
    public var action: String

    public init(matched: Int, changed: Int?, skipped: Int, dryRun: Bool, action: String) {
        self.matched = matched
        self.changed = changed
        self.skipped = skipped
        self.dryRun = dryRun
        self.action = action
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        matched = try container.decode(Int.self, forKey: Key("matched"))
        skipped = try container.decodeIfPresent(Int.self, forKey: Key("skipped")) ?? 0
        dryRun = try container.decodeIfPresent(Bool.self, forKey: Key("dry_run")) ?? false
        if let cancelled = try container.decodeIfPresent(Int.self, forKey: Key("cancelled")) {
            (changed, action) = (cancelled, "cancelled")
        } else if let retried = try container.decodeIfPresent(Int.self, forKey: Key("retried")) {
            (changed, action) = (retried, "retried")
        } else {
            (changed, action) = (nil, "")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(matched, forKey: Key("matched"))
        if let changed { try container.encode(changed, forKey: Key(action)) }
        try container.encode(skipped, forKey: Key("skipped"))
        try container.encode(dryRun, forKey: Key("dry_run"))
    }
}
