import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func acquireLock(resource: String, owner: String, ttl: Int, priority: Int, wait: LockWait?) async throws
        -> LockAcquisition
    {
        try await write { [clock] db in
            let now = clock().stored
            var events: [EventRecord] = []
            if var holder = try Self.heldLock(db, resource: resource) {
                if holder.expiresAt > now {
                    guard holder.owner == owner else {
                        guard let wait else { return .heldByOther(holder) }
                        try db.cachedStatement(
                            sql: """
                                INSERT INTO lock_waiters (waiter_id, resource, owner, ttl, priority, node_id, enqueued_at, deadline)
                                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                                """
                        ).execute(arguments: [
                            wait.waiterID, resource, owner, ttl, priority, wait.nodeID, now.millis,
                            now.addingTimeInterval(TimeInterval(wait.timeout)).millis,
                        ])
                        try Self.noteNode(wait.nodeID, now: now, db)
                        return .queued(holder: holder)
                    }
                    holder = LockLifecycle.renew(holder, ttl: ttl, now: now)
                    try db.execute(
                        sql: "UPDATE locks SET expires_at = ?, ttl = ? WHERE lock_id = ?",
                        arguments: [holder.expiresAt.millis, ttl, holder.lockID])
                    return .renewed(holder)
                }
                events += try Self.markExpired(holder, now: now, db).events
            }
            let (lock, granted) = try Self.grantLock(
                resource: resource, owner: owner, ttl: ttl, priority: priority, waiterID: nil, now: now, db)
            return .granted(lock, events + granted)
        }
    }

    /// Inserts a new held lock with the next fencing token, and its `lock.acquired` event.
    static func grantLock(
        resource: String, owner: String, ttl: Int, priority: Int, waiterID: String?, now: Date, _ db: Database
    ) throws -> (LockRecord, [EventRecord]) {
        let token =
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        INSERT INTO counters (name, value) VALUES ('fencing_token', 1)
                        ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value
                        """)) ?? 1
        let (lock, acquired) = LockLifecycle.grant(
            resource: resource, owner: owner, ttl: ttl, priority: priority, fencingToken: token,
            lockID: Identifier.make("lock"), now: now)
        try db.cachedStatement(
            sql: """
                INSERT INTO locks (lock_id, resource, owner, priority, ttl, fencing_token, acquired_at, expires_at, state,
                    waiter_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held', ?)
                """
        ).execute(arguments: [lock.lockID, resource, owner, priority, ttl, token, now.millis, lock.expiresAt.millis, waiterID])
        return (lock, try Self.insertEvents([acquired], taskID: nil, coreID: nil, db))
    }

    /// With `resource` free: grants it to its head waiter, after forgetting the waiters a
    /// hand-off passes over (timed out, or of a node not seen for ``nodeLifetime``). Nearly
    /// always nobody waits: that costs one indexed read.
    static func handOff(_ resource: String, now: Date, _ db: Database) throws -> (LockHandOff, [EventRecord])? {
        let liveSince = now.addingTimeInterval(-nodeLifetime).millis
        while true {
            guard
                let head = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT w.*, n.seen_at FROM lock_waiters w LEFT JOIN nodes n ON n.node_id = w.node_id
                            WHERE w.resource = ? ORDER BY w.priority DESC, w.arrival LIMIT 1
                            """),
                    arguments: [resource])
            else { return nil }
            let seenAt: Int64? = head["seen_at"]
            guard head["deadline"] as Int64 > now.millis, let seenAt, seenAt > liveSince else {
                try db.cachedStatement(
                    sql: """
                        DELETE FROM lock_waiters WHERE resource = ?
                        AND (deadline <= ? OR node_id NOT IN (SELECT node_id FROM nodes WHERE seen_at > ?))
                        """
                ).execute(arguments: [resource, now.millis, liveSince])
                continue
            }
            try db.cachedStatement(sql: "DELETE FROM lock_waiters WHERE arrival = ?").execute(arguments: [head["arrival"] as Int64])
            let waiterID: String = head["waiter_id"]
            let (lock, events) = try grantLock(
                resource: resource, owner: head["owner"], ttl: head["ttl"], priority: head["priority"], waiterID: waiterID,
                now: now, db)
            return (LockHandOff(waiterID: waiterID, nodeID: head["node_id"], lock: lock), events)
        }
    }

    public func releaseLock(resource: String, owner: String?, force: Bool) async throws -> LockReleaseOutcome {
        try await write { [clock] db in
            let now = clock().stored
            guard let holder = try Self.heldLock(db, resource: resource), holder.expiresAt > now || force || holder.owner == owner
            else { return .notHeld }
            guard force || holder.owner == owner else { return .heldByOther(holder) }
            try db.cachedStatement(sql: "DELETE FROM locks WHERE lock_id = ?").execute(arguments: [holder.lockID])
            var events = try Self.insertEvents(
                [LockLifecycle.release(holder, by: owner, force: force, now: now)], taskID: nil, coreID: nil, db)
            let handOff = try Self.handOff(resource, now: now, db)
            events += handOff?.1 ?? []
            return .released(holder, events, handedTo: handOff?.0)
        }
    }

    public func expireLock(resource: String, lockID: String) async throws -> LockExpiry {
        try await write { [clock] db in
            let now = clock().stored
            guard let holder = try Self.heldLock(db, resource: resource), holder.lockID == lockID else { return .gone }
            guard holder.expiresAt <= now else { return .held(until: holder.expiresAt) }
            var (lock, events) = try Self.markExpired(holder, now: now, db)
            let handOff = try Self.handOff(resource, now: now, db)
            events += handOff?.1 ?? []
            return .expired(lock, events, handedTo: handOff?.0)
        }
    }

    public func withdrawLockWaiter(resource: String, waiterID: String) async throws -> LockWithdrawal {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM lock_waiters WHERE waiter_id = ?").execute(arguments: [waiterID])
            if db.changesCount > 0 { return .withdrawn }
            return try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM locks WHERE waiter_id = ?"), arguments: [waiterID]
            ).map { .granted(try Self.lockRecord($0)) } ?? .gone
        }
    }

    public func lockHandOffs(waiterIDs: [String]) async throws -> [String: LockRecord] {
        guard !waiterIDs.isEmpty else { return [:] }
        return try await read { db in
            let marks = Array(repeating: "?", count: waiterIDs.count).joined(separator: ",")
            var found: [String: LockRecord] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT * FROM locks WHERE waiter_id IN (\(marks))", arguments: StatementArguments(waiterIDs))
            {
                found[row["waiter_id"]] = try Self.lockRecord(row)
            }
            return found
        }
    }

    public func lockQueues() async throws -> [String: LockQueue] {
        let now = clock().stored
        return try await read { db in
            var queues: [String: LockQueue] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT resource, count(*) AS waiting, min(enqueued_at) AS oldest FROM lock_waiters
                    WHERE deadline > ? AND node_id IN (SELECT node_id FROM nodes WHERE seen_at > ?)
                    GROUP BY resource
                    """, arguments: [now.millis, now.addingTimeInterval(-nodeLifetime).millis])
            {
                queues[row["resource"]] = LockQueue(waiting: row["waiting"], oldest: Date(millis: row["oldest"]))
            }
            return queues
        }
    }

    public func recordNodeSeen(_ nodeID: String) async throws {
        try await write { [clock] db in
            let now = clock().stored
            try Self.noteNode(nodeID, now: now, db)
            // Nodes gone for an hour, and what they left behind.
            try db.cachedStatement(sql: "DELETE FROM nodes WHERE seen_at < ?").execute(arguments: [
                now.addingTimeInterval(-3600).millis
            ])
            try db.cachedStatement(sql: "DELETE FROM lock_waiters WHERE node_id NOT IN (SELECT node_id FROM nodes)").execute()
        }
    }

    static func noteNode(_ nodeID: String, now: Date, _ db: Database) throws {
        try db.cachedStatement(
            sql: "INSERT INTO nodes (node_id, seen_at) VALUES (?, ?) ON CONFLICT (node_id) DO UPDATE SET seen_at = excluded.seen_at"
        ).execute(arguments: [nodeID, now.millis])
    }

    public func forgetNode(_ nodeID: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM lock_waiters WHERE node_id = ?", arguments: [nodeID])
            try db.execute(sql: "DELETE FROM nodes WHERE node_id = ?", arguments: [nodeID])
        }
    }

    // MARK: Failed logins

    public func loginFailures(keys: [String]) async throws -> (now: Date, failures: [String: LoginThrottle.Record]) {
        let now = clock().stored
        guard !keys.isEmpty else { return (now, [:]) }
        return try await read { db in
            let marks = Array(repeating: "?", count: keys.count).joined(separator: ",")
            var failures: [String: LoginThrottle.Record] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT * FROM login_failures WHERE key IN (\(marks))", arguments: StatementArguments(keys))
            {
                failures[row["key"]] = LoginThrottle.Record(
                    failures: row["failures"], lastFailure: Date(millis: row["last_failure"]).timeIntervalSince1970)
            }
            return (now, failures)
        }
    }

    public func recordLoginFailure(keys: [String], forgetAfter: TimeInterval) async throws {
        try await write { [clock] db in
            let now = clock().stored
            let forgotten = now.addingTimeInterval(-forgetAfter).millis
            try db.cachedStatement(sql: "DELETE FROM login_failures WHERE last_failure <= ?").execute(arguments: [forgotten])
            for key in keys {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO login_failures (key, failures, last_failure) VALUES (?, 1, ?)
                        ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_failure = excluded.last_failure
                        """
                ).execute(arguments: [key, now.millis])
            }
        }
    }

    public func clearLoginFailures(keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await write { db in
            let marks = Array(repeating: "?", count: keys.count).joined(separator: ",")
            try db.execute(sql: "DELETE FROM login_failures WHERE key IN (\(marks))", arguments: StatementArguments(keys))
        }
    }

    public func nextLockExpiry() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT min(expires_at) FROM locks WHERE state = 'held'").map(Date.init(millis:))
        }
    }

    public func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord] {
        try await read { db in
            var conditions = [expiredSince == nil ? "state = 'held'" : "(state = 'held' OR expires_at >= ?)"]
            var arguments = StatementArguments()
            if let expiredSince { arguments += [expiredSince.millis] }
            if let resource {
                conditions.append("resource = ?")
                arguments += [resource]
            }
            if let owner {
                conditions.append("owner = ?")
                arguments += [owner]
            }
            return try Row.fetchAll(
                db, sql: "SELECT * FROM locks WHERE \(conditions.joined(separator: " AND ")) ORDER BY resource, acquired_at",
                arguments: arguments
            ).map(Self.lockRecord)
        }
    }

    public func countHeldLocks() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM locks WHERE state = 'held'") ?? 0 }
    }

    // MARK: Rows

    static func heldLock(_ db: Database, resource: String) throws -> LockRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM locks WHERE resource = ? AND state = 'held'"), arguments: [resource])
            .map(lockRecord)
    }

    /// Marks `lock` expired with its `lock.expired` event, and forgets locks expired over an hour ago.
    static func markExpired(_ lock: LockRecord, now: Date, _ db: Database) throws -> (lock: LockRecord, events: [EventRecord]) {
        let (expired, event) = LockLifecycle.expire(lock, now: now)
        try db.execute(
            sql: "UPDATE locks SET state = ? WHERE lock_id = ?", arguments: [expired.state.rawValue, lock.lockID])
        try db.execute(
            sql: "DELETE FROM locks WHERE state = 'expired' AND expires_at < ?",
            arguments: [now.addingTimeInterval(-LockLifecycle.expiredRetention).millis])
        return (expired, try insertEvents([event], taskID: nil, coreID: nil, db))
    }

    static func lockRecord(_ row: Row) throws -> LockRecord {
        LockRecord(
            lockID: row["lock_id"], resource: row["resource"], owner: row["owner"], priority: row["priority"],
            ttl: row["ttl"], fencingToken: row["fencing_token"], acquiredAt: Date(millis: row["acquired_at"]),
            expiresAt: Date(millis: row["expires_at"]), state: LockState(rawValue: row["state"]) ?? .expired)
    }
}
