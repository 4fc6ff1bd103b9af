import Foundation

/// One stored event: a task's state change, a lock change, a webhook, or a system alert.
public struct TaskEvent: Codable, Sendable, Hashable {
    /// `event-<seq>`, where `seq` is global and strictly increasing.
    public var eventID: String
    /// The task the event is about; `nil` for events about no task (locks, alerts).
    public var taskID: String?
    /// e.g. `task.created`, `task.progress`, `lock.acquired`, `system.alert`.
    public var eventType: String
    public var timestamp: Date
    public var data: [String: JSONValue]

    public init(eventID: String, taskID: String?, eventType: String, timestamp: Date, data: [String: JSONValue]) {
        self.eventID = eventID
        self.taskID = taskID
        self.eventType = eventType
        self.timestamp = timestamp
        self.data = data
    }

    /// The global sequence number inside `eventID`, `nil` when it has no number.
    public var sequence: Int64? {
        eventID.hasPrefix("event-") ? Int64(eventID.dropFirst("event-".count)) : nil
    }

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case taskID = "task_id"
        case eventType = "event_type"
        case timestamp, data
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        eventID = try container.decode(String.self, forKey: .eventID)
        taskID = try container.decodeIfPresent(String.self, forKey: .taskID)
        eventType = try container.decode(String.self, forKey: .eventType)
        timestamp = try container.decode(Date.self, forKey: .timestamp)
        data = try container.decodeIfPresent([String: JSONValue].self, forKey: .data) ?? [:]
    }
}

/// `GET /jobs/{task_id}/events` response body.
public struct TaskEventList: Codable, Sendable, Hashable {
    public var taskID: String
    /// Events matching the filters, over all pages.
    public var totalEvents: Int
    public var events: [TaskEvent]
    public var pagination: Pagination

    public init(taskID: String, totalEvents: Int, events: [TaskEvent], pagination: Pagination) {
        self.taskID = taskID
        self.totalEvents = totalEvents
        self.events = events
        self.pagination = pagination
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case totalEvents = "total_events"
        case events, pagination
    }
}
