import Foundation
import OrchModels
import PostgresNIO

extension PostgresStore {
    /// The batch's tasks are locked with `SKIP LOCKED`, so nodes pruning at once split the
    /// work instead of waiting for each other, and a task some request holds is left for the
    /// next pass.
    public func pruneTasks(status: TaskStatus, changedBefore: Date, limit: Int) async throws -> PruneCount {
        try await transaction { transaction in
            let rows = try await transaction.rows(
                """
                SELECT seq, id FROM tasks WHERE status = \(status.rawValue) AND updated_at < \(changedBefore.sqlTime)
                ORDER BY updated_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """)
            guard !rows.isEmpty else { return PruneCount(tasks: 0, events: 0) }
            let ids: [String] = try rows.map { try $0.decode("id") }
            let sequences: [Int64] = try rows.map { try $0.decode("seq") }
            let events = try await transaction.rows("DELETE FROM events WHERE task_id = ANY(\(ids)) RETURNING 1 AS gone").count
            try await transaction.execute("DELETE FROM callback_deliveries WHERE task_id = ANY(\(ids))")
            let tasks = try await transaction.rows("DELETE FROM tasks WHERE seq = ANY(\(sequences)) RETURNING 1 AS gone").count
            return PruneCount(tasks: tasks, events: events)
        }
    }

    public func pruneEvents(before: Date, limit: Int) async throws -> Int {
        try await rows(
            """
            DELETE FROM events WHERE seq IN (
                SELECT seq FROM events WHERE task_id IS NULL AND timestamp < \(before.sqlTime)
                ORDER BY timestamp LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING 1 AS gone
            """
        ).count
    }

    public func pruneExpired(keysBefore: Date, receiptsBefore: Date, limit: Int) async throws -> Int {
        try await transaction { transaction in
            let keys = try await transaction.rows(
                """
                DELETE FROM idempotency_keys WHERE (user_id, key) IN (
                    SELECT user_id, key FROM idempotency_keys WHERE created_at < \(keysBefore.sqlTime)
                    LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1 AS gone
                """
            ).count
            let receipts = try await transaction.rows(
                """
                DELETE FROM webhook_receipts WHERE key IN (
                    SELECT key FROM webhook_receipts WHERE received_at < \(receiptsBefore.sqlTime)
                    LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1 AS gone
                """
            ).count
            return max(keys, receipts)
        }
    }

    public var serializesWrites: Bool { false }

    /// Autovacuum marks the space of deleted rows for reuse by itself.
    public func reclaimSpace() async throws {}
}
