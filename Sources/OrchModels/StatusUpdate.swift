import Foundation

/// `PUT /jobs/{task_id}/status` request body.
public struct StatusUpdateRequest: Codable, Sendable, Hashable {
    /// `running`, `completed`, `failed` or `cancelled`.
    public var status: TaskStatus
    /// 0-100.
    public var progress: Int?
    public var message: String?
    /// Extra data about this update; stored in the event, not in the task's metadata.
    public var metadata: [String: JSONValue]?
    /// What the task produced (with `completed`).
    public var result: JSONValue?
    /// Why the task failed (with `failed`).
    public var error: JSONValue?
    /// The claim's lease token; when given it must be the current one (else 409).
    public var leaseToken: String?
    /// Who runs the task, for updates made without a claim.
    public var workerID: String?
    /// Seconds the run took, when the reporter measured it (webhooks); else measured from
    /// `started_at`.
    public var duration: Double?
    /// With `failed` and the current `lease_token`: `false` makes the failure final even when
    /// attempts remain (default: retried).
    public var retry: Bool?

    public init(
        status: TaskStatus, progress: Int? = nil, message: String? = nil, metadata: [String: JSONValue]? = nil,
        result: JSONValue? = nil, error: JSONValue? = nil, leaseToken: String? = nil, workerID: String? = nil,
        duration: Double? = nil, retry: Bool? = nil
    ) {
        self.retry = retry
        self.status = status
        self.progress = progress
        self.message = message
        self.metadata = metadata
        self.result = result
        self.error = error
        self.leaseToken = leaseToken
        self.workerID = workerID
        self.duration = duration
    }

    enum CodingKeys: String, CodingKey {
        case status, progress, message, metadata, result, error
        case leaseToken = "lease_token"
        case workerID = "worker_id"
        case duration, retry
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(TaskStatus.self, forKey: .status)
        progress = try container.decodeIntegerIfPresent(forKey: .progress)
        message = try container.decodeIfPresent(String.self, forKey: .message)
        metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata)
        result = try container.decodeIfPresent(JSONValue.self, forKey: .result)
        error = try container.decodeIfPresent(JSONValue.self, forKey: .error)
        leaseToken = try container.decodeIfPresent(String.self, forKey: .leaseToken)
        workerID = try container.decodeIfPresent(String.self, forKey: .workerID)
        duration = try container.decodeIfPresent(Double.self, forKey: .duration)
        retry = try container.decodeIfPresent(Bool.self, forKey: .retry)
    }
}

/// `PUT /jobs/{task_id}/status` response body.
public struct StatusUpdateResponse: Codable, Sendable, Hashable {
    /// Always `updated`.
    public var status: String
    public var taskID: String
    public var updatedAt: Date
    /// The last event the update wrote.
    public var eventID: String

    public init(taskID: String, updatedAt: Date, eventID: String) {
        self.status = "updated"
        self.taskID = taskID
        self.updatedAt = updatedAt
        self.eventID = eventID
    }

    enum CodingKeys: String, CodingKey {
        case status
        case taskID = "task_id"
        case updatedAt = "updated_at"
        case eventID = "event_id"
    }
}
