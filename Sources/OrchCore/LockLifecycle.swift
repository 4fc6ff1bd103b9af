import Foundation
import OrchModels

/// The lock state machine: what each grant, renewal, release and expiry makes of a lock and
/// which events it implies, as ``TaskLifecycle`` does for tasks. Backends only persist what it
/// returns (and allocate the fencing token), so every backend stores the same events.
public enum LockLifecycle {
    /// Expired locks are listed (`GET /locks?expired=true`) for an hour, then deleted.
    public static let expiredRetention: TimeInterval = 3600

    /// A new grant of `resource` to `owner` with the fencing token the store allocated, and
    /// its `lock.acquired` event.
    public static func grant(
        resource: String, owner: String, ttl: Int, priority: Int, fencingToken: Int64, lockID: String, now: Date
    ) -> (lock: LockRecord, event: EventDraft) {
        let lock = LockRecord(
            lockID: lockID, resource: resource, owner: owner, priority: priority, ttl: ttl, fencingToken: fencingToken,
            acquiredAt: now, expiresAt: now.addingTimeInterval(TimeInterval(ttl)))
        let event = EventDraft(
            type: .lockAcquired, timestamp: now,
            data: data(lock).merging(["ttl": .int(Int64(ttl)), "priority": .int(Int64(priority))]) { $1 })
        return (lock, event)
    }

    /// The holder renewing its lock: it runs `ttl` seconds from now. No event.
    public static func renew(_ lock: LockRecord, ttl: Int, now: Date) -> LockRecord {
        var renewed = lock
        renewed.ttl = ttl
        renewed.expiresAt = now.addingTimeInterval(TimeInterval(ttl))
        return renewed
    }

    /// The `lock.released` event of `lock` released by `owner` (`forced` when an admin released
    /// someone else's).
    public static func release(_ lock: LockRecord, by owner: String?, force: Bool, now: Date) -> EventDraft {
        var data = data(lock)
        data["forced"] = .bool(force && lock.owner != owner)
        return EventDraft(type: .lockReleased, timestamp: now, data: data)
    }

    /// `lock` after its time ran out, and its `lock.expired` event.
    public static func expire(_ lock: LockRecord, now: Date) -> (lock: LockRecord, event: EventDraft) {
        var expired = lock
        expired.state = .expired
        return (expired, EventDraft(type: .lockExpired, timestamp: now, data: data(lock)))
    }

    /// What every lock event says about its lock.
    static func data(_ lock: LockRecord) -> [String: JSONValue] {
        [
            "resource": .string(lock.resource), "owner": .string(lock.owner), "lock_id": .string(lock.lockID),
            "fencing_token": .int(lock.fencingToken), "expires_at": .string(Timestamp.format(lock.expiresAt)),
        ]
    }
}
