import Foundation

/// `POST /cores/{core_id}/claim` request body.
public struct ClaimRequest: Codable, Sendable, Hashable {
    /// 1-128 characters identifying the worker.
    public var workerID: String
    /// Seconds to wait for a task when none is ready, 0-60. Default 0.
    public var wait: Int
    /// Lease length in seconds, 1-600. Default 30.
    public var lease: Int
    /// Most tasks to take at once, 1-100. Default 1.
    public var maxTasks: Int

    public init(workerID: String, wait: Int = 0, lease: Int = 30, maxTasks: Int = 1) {
        self.workerID = workerID
        self.wait = wait
        self.lease = lease
        self.maxTasks = maxTasks
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id"
        case wait, lease
        case maxTasks = "max_tasks"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        workerID = try container.decode(String.self, forKey: .workerID)
        wait = try container.decodeIntegerIfPresent(forKey: .wait) ?? 0
        lease = try container.decodeIntegerIfPresent(forKey: .lease) ?? 30
        maxTasks = try container.decodeIntegerIfPresent(forKey: .maxTasks) ?? 1
    }
}

/// A claimed task: the task's fields plus the lease the worker must present.
public struct ClaimedTask: Codable, Sendable, Hashable {
    public var task: OrchTask
    /// Sent back with heartbeats and status updates; a stale token is refused with 409.
    public var leaseToken: String
    public var leaseExpiresAt: Date

    public init(task: OrchTask, leaseToken: String, leaseExpiresAt: Date) {
        self.task = task
        self.leaseToken = leaseToken
        self.leaseExpiresAt = leaseExpiresAt
    }

    enum LeaseKeys: String, CodingKey {
        case leaseToken = "lease_token"
        case leaseExpiresAt = "lease_expires_at"
    }

    public init(from decoder: any Decoder) throws {
        task = try OrchTask(from: decoder)
        let container = try decoder.container(keyedBy: LeaseKeys.self)
        leaseToken = try container.decode(String.self, forKey: .leaseToken)
        leaseExpiresAt = try container.decode(Date.self, forKey: .leaseExpiresAt)
    }

    public func encode(to encoder: any Encoder) throws {
        try task.encode(to: encoder)
        var container = encoder.container(keyedBy: LeaseKeys.self)
        try container.encode(leaseToken, forKey: .leaseToken)
        try container.encode(leaseExpiresAt, forKey: .leaseExpiresAt)
    }
}

/// `POST /cores/{core_id}/claim` response body (200).
public struct ClaimResponse: Codable, Sendable, Hashable {
    public var tasks: [ClaimedTask]

    public init(tasks: [ClaimedTask]) {
        self.tasks = tasks
    }
}

/// `POST /jobs/{task_id}/heartbeat` request body.
public struct HeartbeatRequest: Codable, Sendable, Hashable {
    public var workerID: String
    public var leaseToken: String
    /// New lease length in seconds from now, 1-600; default the claim's lease.
    public var lease: Int?

    public init(workerID: String, leaseToken: String, lease: Int? = nil) {
        self.workerID = workerID
        self.leaseToken = leaseToken
        self.lease = lease
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id"
        case leaseToken = "lease_token"
        case lease
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        workerID = try container.decode(String.self, forKey: .workerID)
        leaseToken = try container.decode(String.self, forKey: .leaseToken)
        lease = try container.decodeIntegerIfPresent(forKey: .lease)
    }
}

/// `POST /jobs/{task_id}/heartbeat` response body.
public struct HeartbeatResponse: Codable, Sendable, Hashable {
    public var taskID: String
    public var status: TaskStatus
    public var leaseExpiresAt: Date
    /// True once the task was cancelled: the worker should stop and not report a result.
    public var cancelRequested: Bool

    public init(taskID: String, status: TaskStatus, leaseExpiresAt: Date, cancelRequested: Bool) {
        self.taskID = taskID
        self.status = status
        self.leaseExpiresAt = leaseExpiresAt
        self.cancelRequested = cancelRequested
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case status
        case leaseExpiresAt = "lease_expires_at"
        case cancelRequested = "cancel_requested"
    }
}
