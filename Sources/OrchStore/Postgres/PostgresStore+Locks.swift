import Foundation
import OrchCore
import OrchModels
import PostgresNIO

/// Locks on PostgreSQL. Every change to one resource first takes a transaction-scoped advisory
/// lock on it, so changes to a resource are serialised across every connection and server;
/// lapses are decided by the database's clock (`clock_timestamp()`), the one clock every node
/// shares.
extension PostgresStore {
    public func acquireLock(resource: String, owner: String, ttl: Int, priority: Int) async throws -> LockAcquisition {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            var events: [EventRecord] = []
            if var holder = held {
                if holder.expiresAt > now {
                    guard holder.owner == owner else { return .heldByOther(holder) }
                    holder = LockLifecycle.renew(holder, ttl: ttl, now: now)
                    try await transaction.execute(
                        """
                        UPDATE locks SET expires_at = \(holder.expiresAt.sqlTime), ttl = \(Int64(ttl))
                        WHERE lock_id = \(holder.lockID)
                        """)
                    return .renewed(holder)
                }
                events += try await Self.markExpired(holder, now: now, transaction).events
            }
            let (lock, granted) = try await Self.grantLock(
                resource: resource, owner: owner, ttl: ttl, priority: priority, now: now, transaction)
            return .granted(lock, events + granted)
        }
    }

    public func releaseLock(resource: String, owner: String?, force: Bool, successor: LockSuccessor?) async throws
        -> LockReleaseOutcome
    {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            guard let holder = held, holder.expiresAt > now || force || holder.owner == owner else { return .notHeld }
            guard force || holder.owner == owner else { return .heldByOther(holder) }
            try await transaction.execute("DELETE FROM locks WHERE lock_id = \(holder.lockID)")
            var events = try await Self.insertEvents(
                [LockLifecycle.release(holder, by: owner, force: force, now: now)], taskID: nil, coreID: nil, transaction)
            guard let successor else { return .released(holder, events, successorLock: nil) }
            let (lock, granted) = try await Self.grantLock(
                resource: resource, owner: successor.owner, ttl: successor.ttl, priority: successor.priority, now: now,
                transaction)
            events += granted
            return .released(holder, events, successorLock: lock)
        }
    }

    public func expireLock(resource: String, lockID: String) async throws -> LockExpiry {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            guard let holder = held, holder.lockID == lockID else { return .gone }
            guard holder.expiresAt <= now else { return .held(until: holder.expiresAt) }
            let (lock, events) = try await Self.markExpired(holder, now: now, transaction)
            return .expired(lock, events)
        }
    }

    public func nextLockExpiry() async throws -> Date? {
        try await row("SELECT min(expires_at) AS next FROM locks WHERE state = 'held'")?.optionalDate("next")
    }

    public func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord] {
        var filter = PostgresFilter()
        if let expiredSince {
            filter.condition("(state = 'held' OR expires_at >= $?)", [expiredSince.sqlTime])
        } else {
            filter.condition("state = 'held'")
        }
        filter.equal("resource", resource)
        filter.equal("owner", owner)
        return try await rows(filter.query("SELECT * FROM locks", suffix: " ORDER BY resource, acquired_at")).map(Self.lockRecord)
    }

    public func countHeldLocks() async throws -> Int {
        try await row("SELECT count(*) AS n FROM locks WHERE state = 'held'")?.int("n") ?? 0
    }

    // MARK: Rows

    /// Takes the resource's advisory lock; returns the database's time and the held lock, if any.
    static func lockResource(_ resource: String, _ transaction: PostgresTransaction) async throws
        -> (now: Date, held: LockRecord?)
    {
        try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresLocks.lockResource), hashtext(\(resource)))")
        let rows = try await transaction.rows(
            """
            SELECT clock_timestamp() AS now, locks.* FROM (SELECT 1) one
            LEFT JOIN locks ON locks.resource = \(resource) AND locks.state = 'held'
            """)
        guard let row = rows.first else { return (Date(), nil) }
        let now = try row.date("now")
        guard try row.decode("lock_id", as: String?.self) != nil else { return (now, nil) }
        return (now, try lockRecord(row))
    }

    /// Inserts a new held lock with the next fencing token, and its `lock.acquired` event.
    static func grantLock(
        resource: String, owner: String, ttl: Int, priority: Int, now: Date, _ transaction: PostgresTransaction
    ) async throws -> (LockRecord, [EventRecord]) {
        let token = try await transaction.row("SELECT nextval('fencing_tokens') AS token")?.decode("token", as: Int64.self) ?? 1
        let (lock, acquired) = LockLifecycle.grant(
            resource: resource, owner: owner, ttl: ttl, priority: priority, fencingToken: token,
            lockID: Identifier.make("lock"), now: now)
        try await transaction.execute(
            """
            INSERT INTO locks (lock_id, resource, owner, priority, ttl, fencing_token, acquired_at, expires_at, state)
            VALUES (\(lock.lockID), \(resource), \(owner), \(Int64(priority)), \(Int64(ttl)), \(token), \(now.sqlTime),
                \(lock.expiresAt.sqlTime), 'held')
            """)
        return (lock, try await insertEvents([acquired], taskID: nil, coreID: nil, transaction))
    }

    /// Marks `lock` expired with its `lock.expired` event, and forgets locks expired over an hour ago.
    static func markExpired(_ lock: LockRecord, now: Date, _ transaction: PostgresTransaction) async throws
        -> (lock: LockRecord, events: [EventRecord])
    {
        let (expired, event) = LockLifecycle.expire(lock, now: now)
        try await transaction.execute("UPDATE locks SET state = \(expired.state.rawValue) WHERE lock_id = \(lock.lockID)")
        try await transaction.execute(
            """
            DELETE FROM locks WHERE state = 'expired'
            AND expires_at < \(now.addingTimeInterval(-LockLifecycle.expiredRetention).sqlTime)
            """)
        return (expired, try await insertEvents([event], taskID: nil, coreID: nil, transaction))
    }

    static func lockRecord(_ row: PostgresRandomAccessRow) throws -> LockRecord {
        LockRecord(
            lockID: try row.decode("lock_id"), resource: try row.decode("resource"), owner: try row.decode("owner"),
            priority: try row.int("priority"), ttl: try row.int("ttl"), fencingToken: try row.decode("fencing_token"),
            acquiredAt: try row.date("acquired_at"), expiresAt: try row.date("expires_at"),
            state: LockState(rawValue: try row.decode("state")) ?? .expired)
    }
}
