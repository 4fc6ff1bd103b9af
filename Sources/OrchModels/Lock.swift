import Foundation

/// `POST /locks` request body.
public struct AcquireLockRequest: Codable, Sendable, Hashable {
    /// 1-256 characters.
    public var resource: String
    /// 1-128 characters.
    public var owner: String
    /// Seconds the lock is held unless renewed or released, 1-86400. Required.
    public var ttl: Int
    /// 1-10, higher served first among waiters. Default 1.
    public var priority: Int
    /// Seconds to wait for a held lock, 0-300. Default 0 (answer 409 at once).
    public var timeout: Int

    public init(resource: String, owner: String, ttl: Int, priority: Int = 1, timeout: Int = 0) {
        self.resource = resource
        self.owner = owner
        self.ttl = ttl
        self.priority = priority
        self.timeout = timeout
    }

    enum CodingKeys: String, CodingKey {
        case resource, owner, ttl, priority, timeout
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        resource = try container.decode(String.self, forKey: .resource)
        owner = try container.decode(String.self, forKey: .owner)
        guard let ttl = try container.decodeIntegerIfPresent(forKey: .ttl) else {
            throw DecodingError.keyNotFound(CodingKeys.ttl, .init(codingPath: container.codingPath, debugDescription: "ttl is required"))
        }
        self.ttl = ttl
        priority = try container.decodeIntegerIfPresent(forKey: .priority) ?? 1
        timeout = try container.decodeIntegerIfPresent(forKey: .timeout) ?? 0
    }
}

/// `POST /locks` answer (200): the lock is yours.
public struct LockGrant: Codable, Sendable, Hashable {
    /// Always `acquired` (also for a renewal by the same owner).
    public var status: String
    public var resource: String
    public var owner: String
    public var acquiredAt: Date
    public var expiresAt: Date
    /// This server's id of the grant; `nil` from servers that do not send one.
    public var lockID: String?
    /// Strictly increases with every grant, across resources and restarts: pass it to the
    /// resource you protect and have it refuse smaller tokens than it has seen.
    /// Strictly increasing per resource with every new grant; `nil` from servers that do not
    /// send one (the reference's examples have none).
    public var fencingToken: Int64?

    public init(resource: String, owner: String, acquiredAt: Date, expiresAt: Date, lockID: String, fencingToken: Int64) {
        self.status = "acquired"
        self.resource = resource
        self.owner = owner
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
        self.lockID = lockID
        self.fencingToken = fencingToken
    }

    enum CodingKeys: String, CodingKey {
        case status, resource, owner
        case acquiredAt = "acquired_at"
        case expiresAt = "expires_at"
        case lockID = "lock_id"
        case fencingToken = "fencing_token"
    }
}

/// `DELETE /locks/{resource}` answer (200).
public struct LockRelease: Codable, Sendable, Hashable {
    /// Always `released`.
    public var status: String
    public var resource: String
    public var owner: String
    public var releasedAt: Date

    public init(resource: String, owner: String, releasedAt: Date) {
        self.status = "released"
        self.resource = resource
        self.owner = owner
        self.releasedAt = releasedAt
    }

    enum CodingKeys: String, CodingKey {
        case status, resource, owner
        case releasedAt = "released_at"
    }
}

/// One lock in `GET /locks`.
public struct LockInfo: Codable, Sendable, Hashable {
    public var resource: String
    public var owner: String
    public var priority: Int
    public var ttl: Int
    public var acquiredAt: Date
    public var expiresAt: Date
    /// Whole seconds left; 0 for an expired lock.
    public var remainingTTL: Int
    /// This server's id of the grant; `nil` from servers that do not send one.
    public var lockID: String?
    /// Strictly increasing per resource with every new grant; `nil` from servers that do not
    /// send one (the reference's examples have none).
    public var fencingToken: Int64?
    /// `held`, or `expired` (listed with `expired=true`).
    public var status: String

    public init(
        resource: String, owner: String, priority: Int, ttl: Int, acquiredAt: Date, expiresAt: Date, remainingTTL: Int,
        lockID: String, fencingToken: Int64, status: String
    ) {
        self.resource = resource
        self.owner = owner
        self.priority = priority
        self.ttl = ttl
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
        self.remainingTTL = remainingTTL
        self.lockID = lockID
        self.fencingToken = fencingToken
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case resource, owner, priority, ttl
        case acquiredAt = "acquired_at"
        case expiresAt = "expires_at"
        case remainingTTL = "remaining_ttl"
        case lockID = "lock_id"
        case fencingToken = "fencing_token"
        case status
    }

    /// Reads servers that send neither `lock_id`, `fencing_token` nor `status` (the
    /// reference's example): such a listed lock is `held`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        resource = try container.decode(String.self, forKey: .resource)
        owner = try container.decode(String.self, forKey: .owner)
        priority = try container.decode(Int.self, forKey: .priority)
        ttl = try container.decode(Int.self, forKey: .ttl)
        acquiredAt = try container.decode(Date.self, forKey: .acquiredAt)
        expiresAt = try container.decode(Date.self, forKey: .expiresAt)
        remainingTTL = try container.decode(Int.self, forKey: .remainingTTL)
        lockID = try container.decodeIfPresent(String.self, forKey: .lockID)
        fencingToken = try container.decodeIfPresent(Int64.self, forKey: .fencingToken)
        status = try container.decodeIfPresent(String.self, forKey: .status) ?? "held"
    }
}

/// `GET /locks` answer.
public struct LockList: Codable, Sendable, Hashable {
    /// Requests waiting for locks.
    public struct QueueStatus: Codable, Sendable, Hashable {
        public var totalWaiting: Int
        public var byResource: [String: Int]

        public init(totalWaiting: Int, byResource: [String: Int]) {
            self.totalWaiting = totalWaiting
            self.byResource = byResource
        }

        enum CodingKeys: String, CodingKey {
            case totalWaiting = "total_waiting"
            case byResource = "by_resource"
        }
    }

    public var totalLocks: Int
    public var locks: [LockInfo]
    public var queueStatus: QueueStatus

    public init(totalLocks: Int, locks: [LockInfo], queueStatus: QueueStatus) {
        self.totalLocks = totalLocks
        self.locks = locks
        self.queueStatus = queueStatus
    }

    enum CodingKeys: String, CodingKey {
        case totalLocks = "total_locks"
        case locks
        case queueStatus = "queue_status"
    }
}
