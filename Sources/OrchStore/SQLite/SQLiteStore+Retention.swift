import Foundation
import GRDB
import OrchModels

extension SQLiteStore {
    public func pruneTasks(status: TaskStatus, changedBefore: Date, limit: Int) async throws -> PruneCount {
        try await write { db in
            // Oldest first through `tasks_status_updated (status, updated_at)`.
            let rows = try Row.fetchAll(
                db, sql: "SELECT seq, id FROM tasks WHERE status = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
                arguments: [status.rawValue, changedBefore.millis, limit])
            guard !rows.isEmpty else { return PruneCount(tasks: 0, events: 0) }
            let ids: [String] = rows.map { $0["id"] }
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            try db.execute(sql: "DELETE FROM events WHERE task_id IN (\(marks))", arguments: StatementArguments(ids))
            let events = db.changesCount
            try db.execute(sql: "DELETE FROM callback_deliveries WHERE task_id IN (\(marks))", arguments: StatementArguments(ids))
            try db.execute(
                sql: "DELETE FROM tasks WHERE seq IN (\(marks))", arguments: StatementArguments(rows.map { $0["seq"] as Int64 }))
            return PruneCount(tasks: db.changesCount, events: events)
        }
    }

    public func pruneEvents(before: Date, limit: Int) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: """
                    DELETE FROM events WHERE seq IN (
                        SELECT seq FROM events WHERE task_id IS NULL AND timestamp < ? ORDER BY timestamp LIMIT ?)
                    """,
                arguments: [before.millis, limit])
            return db.changesCount
        }
    }

    public func pruneExpired(keysBefore: Date, receiptsBefore: Date, limit: Int) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM idempotency_keys WHERE (user_id, key) IN (SELECT user_id, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                arguments: [keysBefore.millis, limit])
            let keys = db.changesCount
            try db.execute(
                sql: "DELETE FROM webhook_receipts WHERE key IN (SELECT key FROM webhook_receipts WHERE received_at < ? LIMIT ?)",
                arguments: [receiptsBefore.millis, limit])
            return max(keys, db.changesCount)
        }
    }

    public var serializesWrites: Bool { true }

    /// `PRAGMA incremental_vacuum` in steps of 256 pages (1 MiB), each its own short write, on a
    /// file made with `auto_vacuum=incremental`; a file made before that has `auto_vacuum` off and
    /// keeps its free pages for new rows.
    public func reclaimSpace() async throws {
        for _ in 0..<1_024 {
            let freed = try await write { db -> Bool in
                guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 2,
                    try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0 > 0
                else { return false }
                try db.execute(sql: "PRAGMA incremental_vacuum(256)")
                return true
            }
            if !freed { return }
        }
    }
}
