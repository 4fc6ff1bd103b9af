import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func acquireLock(resource: String, owner: String, ttl: Int, priority: Int) async throws -> LockAcquisition {
        try await write { [clock] db in
            let now = clock().stored
            var events: [EventRecord] = []
            if var holder = try Self.heldLock(db, resource: resource) {
                if holder.expiresAt > now {
                    guard holder.owner == owner else { return .heldByOther(holder) }
                    holder = LockLifecycle.renew(holder, ttl: ttl, now: now)
                    try db.execute(
                        sql: "UPDATE locks SET expires_at = ?, ttl = ? WHERE lock_id = ?",
                        arguments: [holder.expiresAt.millis, ttl, holder.lockID])
                    return .renewed(holder)
                }
                events += try Self.markExpired(holder, now: now, db).events
            }
            let (lock, granted) = try Self.grantLock(resource: resource, owner: owner, ttl: ttl, priority: priority, now: now, db)
            return .granted(lock, events + granted)
        }
    }

    /// Inserts a new held lock with the next fencing token, and its `lock.acquired` event.
    static func grantLock(resource: String, owner: String, ttl: Int, priority: Int, now: Date, _ db: Database) throws
        -> (LockRecord, [EventRecord])
    {
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
                INSERT INTO locks (lock_id, resource, owner, priority, ttl, fencing_token, acquired_at, expires_at, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held')
                """
        ).execute(arguments: [lock.lockID, resource, owner, priority, ttl, token, now.millis, lock.expiresAt.millis])
        return (lock, try Self.insertEvents([acquired], taskID: nil, coreID: nil, db))
    }

    public func releaseLock(resource: String, owner: String?, force: Bool, successor: LockSuccessor?) async throws
        -> LockReleaseOutcome
    {
        try await write { [clock] db in
            let now = clock().stored
            guard let holder = try Self.heldLock(db, resource: resource), holder.expiresAt > now || force || holder.owner == owner
            else { return .notHeld }
            guard force || holder.owner == owner else { return .heldByOther(holder) }
            try db.cachedStatement(sql: "DELETE FROM locks WHERE lock_id = ?").execute(arguments: [holder.lockID])
            var events = try Self.insertEvents(
                [LockLifecycle.release(holder, by: owner, force: force, now: now)], taskID: nil, coreID: nil, db)
            guard let successor else { return .released(holder, events, successorLock: nil) }
            let (lock, granted) = try Self.grantLock(
                resource: resource, owner: successor.owner, ttl: successor.ttl, priority: successor.priority, now: now, db)
            events += granted
            return .released(holder, events, successorLock: lock)
        }
    }

    public func expireLock(resource: String, lockID: String) async throws -> LockExpiry {
        try await write { [clock] db in
            let now = clock().stored
            guard let holder = try Self.heldLock(db, resource: resource), holder.lockID == lockID else { return .gone }
            guard holder.expiresAt <= now else { return .held(until: holder.expiresAt) }
            let (lock, events) = try Self.markExpired(holder, now: now, db)
            return .expired(lock, events)
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
