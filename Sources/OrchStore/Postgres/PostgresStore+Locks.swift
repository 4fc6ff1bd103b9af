import Foundation
import OrchCore
import OrchModels
import PostgresNIO

/// Locks on PostgreSQL. Every change to one resource first takes a transaction-scoped advisory
/// lock on it, so changes to a resource are serialised across every connection and server;
/// lapses are decided by the database's clock (`clock_timestamp()`), the one clock every node
/// shares.
extension PostgresStore {
    public func acquireLock(resource: String, owner: String, ttl: Int, priority: Int, wait: LockWait?) async throws
        -> LockAcquisition
    {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            var events: [EventRecord] = []
            if var holder = held {
                if holder.expiresAt > now {
                    guard holder.owner == owner else {
                        guard let wait else { return .heldByOther(holder) }
                        try await transaction.execute(
                            """
                            INSERT INTO lock_waiters (waiter_id, resource, owner, ttl, priority, node_id, enqueued_at, deadline)
                            VALUES (\(wait.waiterID), \(resource), \(owner), \(Int64(ttl)), \(Int64(priority)), \(wait.nodeID),
                                \(now.sqlTime), \(now.addingTimeInterval(TimeInterval(wait.timeout)).sqlTime))
                            """)
                        try await Self.noteNode(wait.nodeID, transaction)
                        return .queued(holder: holder)
                    }
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
                resource: resource, owner: owner, ttl: ttl, priority: priority, waiterID: nil, now: now, transaction)
            return .granted(lock, events + granted)
        }
    }

    public func releaseLock(resource: String, owner: String?, force: Bool) async throws -> LockReleaseOutcome {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            guard let holder = held, holder.expiresAt > now || force || holder.owner == owner else { return .notHeld }
            guard force || holder.owner == owner else { return .heldByOther(holder) }
            try await transaction.execute("DELETE FROM locks WHERE lock_id = \(holder.lockID)")
            var events = try await Self.insertEvents(
                [LockLifecycle.release(holder, by: owner, force: force, now: now)], taskID: nil, coreID: nil, transaction)
            let handOff = try await Self.handOff(resource, now: now, transaction)
            events += handOff?.1 ?? []
            return .released(holder, events, handedTo: handOff?.0)
        }
    }

    public func expireLock(resource: String, lockID: String) async throws -> LockExpiry {
        try await transaction { transaction in
            let (now, held) = try await Self.lockResource(resource, transaction)
            guard let holder = held, holder.lockID == lockID else { return .gone }
            guard holder.expiresAt <= now else { return .held(until: holder.expiresAt) }
            var (lock, events) = try await Self.markExpired(holder, now: now, transaction)
            let handOff = try await Self.handOff(resource, now: now, transaction)
            events += handOff?.1 ?? []
            return .expired(lock, events, handedTo: handOff?.0)
        }
    }

    public func withdrawLockWaiter(resource: String, waiterID: String) async throws -> LockWithdrawal {
        try await transaction { transaction in
            _ = try await Self.lockResource(resource, transaction)
            let withdrawn = try await transaction.rows(
                "DELETE FROM lock_waiters WHERE waiter_id = \(waiterID) RETURNING arrival")
            if !withdrawn.isEmpty { return .withdrawn }
            return try await transaction.rows("SELECT * FROM locks WHERE waiter_id = \(waiterID)").first
                .map { .granted(try Self.lockRecord($0)) } ?? .gone
        }
    }

    public func lockHandOffs(waiterIDs: [String]) async throws -> [String: LockRecord] {
        guard !waiterIDs.isEmpty else { return [:] }
        var found: [String: LockRecord] = [:]
        for row in try await rows("SELECT * FROM locks WHERE waiter_id = ANY(\(waiterIDs)::text[])") {
            found[try row.decode("waiter_id", as: String.self)] = try Self.lockRecord(row)
        }
        return found
    }

    public func lockQueues() async throws -> [String: LockQueue] {
        var queues: [String: LockQueue] = [:]
        for row in try await rows(
            """
            SELECT resource, count(*) AS waiting, min(enqueued_at) AS oldest FROM lock_waiters
            WHERE deadline > clock_timestamp() AND node_id IN (
                SELECT node_id FROM nodes WHERE seen_at > clock_timestamp() - \(nodeLifetime) * interval '1 second')
            GROUP BY resource
            """)
        {
            queues[try row.decode("resource", as: String.self)] = LockQueue(
                waiting: try row.int("waiting"), oldest: try row.date("oldest"))
        }
        return queues
    }

    public func recordNodeSeen(_ nodeID: String) async throws {
        _ = try await autocommit { transaction in
            try await Self.noteNode(nodeID, transaction)
            // Nodes gone for an hour, and what they left behind.
            try await transaction.execute("DELETE FROM nodes WHERE seen_at < clock_timestamp() - interval '1 hour'")
            try await transaction.execute("DELETE FROM lock_waiters WHERE node_id NOT IN (SELECT node_id FROM nodes)")
        }
    }

    static func noteNode(_ nodeID: String, _ transaction: PostgresTransaction) async throws {
        try await transaction.execute(
            """
            INSERT INTO nodes (node_id, seen_at) VALUES (\(nodeID), clock_timestamp())
            ON CONFLICT (node_id) DO UPDATE SET seen_at = excluded.seen_at
            """)
    }

    public func forgetNode(_ nodeID: String) async throws {
        try await transaction { transaction in
            try await transaction.execute("DELETE FROM lock_waiters WHERE node_id = \(nodeID)")
            try await transaction.execute("DELETE FROM nodes WHERE node_id = \(nodeID)")
        }
    }

    // MARK: Failed logins

    public func loginFailures(keys: [String]) async throws -> (now: Date, failures: [String: LoginThrottle.Record]) {
        let rows = try await rows(
            """
            SELECT clock_timestamp() AS now, f.key, f.failures, f.last_failure FROM (SELECT 1) one
            LEFT JOIN login_failures f ON f.key = ANY(\(keys)::text[])
            """)
        var failures: [String: LoginThrottle.Record] = [:]
        for row in rows {
            guard let key = try row.decode("key", as: String?.self) else { continue }
            failures[key] = LoginThrottle.Record(
                failures: try row.int("failures"), lastFailure: try row.date("last_failure").timeIntervalSince1970)
        }
        return (try rows.first?.date("now") ?? Date(), failures)
    }

    public func recordLoginFailure(keys: [String], forgetAfter: TimeInterval) async throws {
        try await transaction { transaction in
            try await transaction.execute(
                """
                DELETE FROM login_failures WHERE last_failure <= clock_timestamp() - \(forgetAfter) * interval '1 second'
                """)
            try await transaction.execute(
                """
                INSERT INTO login_failures AS f (key, failures, last_failure)
                SELECT key, 1, clock_timestamp() FROM unnest(\(keys)::text[]) AS key ORDER BY key
                ON CONFLICT (key) DO UPDATE SET failures = f.failures + 1, last_failure = excluded.last_failure
                """)
        }
    }

    public func clearLoginFailures(keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        _ = try await rows("DELETE FROM login_failures WHERE key = ANY(\(keys)::text[])")
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
        resource: String, owner: String, ttl: Int, priority: Int, waiterID: String?, now: Date,
        _ transaction: PostgresTransaction
    ) async throws -> (LockRecord, [EventRecord]) {
        let token = try await transaction.row("SELECT nextval('fencing_tokens') AS token")?.decode("token", as: Int64.self) ?? 1
        let (lock, acquired) = LockLifecycle.grant(
            resource: resource, owner: owner, ttl: ttl, priority: priority, fencingToken: token,
            lockID: Identifier.make("lock"), now: now)
        try await transaction.execute(
            """
            INSERT INTO locks (lock_id, resource, owner, priority, ttl, fencing_token, acquired_at, expires_at, state,
                waiter_id)
            VALUES (\(lock.lockID), \(resource), \(owner), \(Int64(priority)), \(Int64(ttl)), \(token), \(now.sqlTime),
                \(lock.expiresAt.sqlTime), 'held', \(waiterID))
            """)
        return (lock, try await insertEvents([acquired], taskID: nil, coreID: nil, transaction))
    }

    /// With `resource` free (its advisory lock taken): grants it to its head waiter, after
    /// forgetting the waiters a hand-off passes over (timed out, or of a node not seen for
    /// ``nodeLifetime``).
    static func handOff(_ resource: String, now: Date, _ transaction: PostgresTransaction) async throws
        -> (LockHandOff, [EventRecord])?
    {
        guard
            let head = try await transaction.rows(
                """
                WITH stale AS (
                    DELETE FROM lock_waiters WHERE resource = \(resource) AND (deadline <= \(now.sqlTime)
                        OR node_id NOT IN (SELECT node_id FROM nodes WHERE seen_at > \(now.addingTimeInterval(-nodeLifetime).sqlTime)))
                    RETURNING arrival
                )
                DELETE FROM lock_waiters WHERE arrival = (
                    SELECT arrival FROM lock_waiters WHERE resource = \(resource)
                    AND arrival NOT IN (SELECT arrival FROM stale)
                    AND deadline > \(now.sqlTime)
                    AND node_id IN (SELECT node_id FROM nodes WHERE seen_at > \(now.addingTimeInterval(-nodeLifetime).sqlTime))
                    ORDER BY priority DESC, arrival LIMIT 1)
                RETURNING *
                """
            ).first
        else { return nil }
        let waiterID = try head.decode("waiter_id", as: String.self)
        let (lock, events) = try await grantLock(
            resource: resource, owner: try head.decode("owner"), ttl: try head.int("ttl"), priority: try head.int("priority"),
            waiterID: waiterID, now: now, transaction)
        return (LockHandOff(waiterID: waiterID, nodeID: try head.decode("node_id"), lock: lock), events)
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
