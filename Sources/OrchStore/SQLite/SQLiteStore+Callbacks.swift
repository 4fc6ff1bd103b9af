import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func takeDueCallbacks(now: Date, leaseUntil: Date, limit: Int) async throws -> [CallbackDelivery] {
        try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM callback_deliveries WHERE state = 'pending' AND next_attempt_at <= ?
                    ORDER BY next_attempt_at LIMIT ?
                    """,
                arguments: [now.millis, limit])
            return try rows.map { row in
                try db.execute(
                    sql: "UPDATE callback_deliveries SET next_attempt_at = ? WHERE id = ?",
                    arguments: [leaseUntil.millis, row["id"] as String])
                return CallbackDelivery(
                    id: row["id"], taskID: row["task_id"], coreID: row["core_id"], url: row["url"],
                    body: [UInt8](row["body"] as Data), attempts: row["attempts"])
            }
        }
    }

    public func recordCallbackAttempt(_ delivery: CallbackDelivery, outcome: CallbackAttemptOutcome, event: EventDraft)
        async throws -> EventRecord
    {
        try await write { db in
            let (state, next): (String, Date?) =
                switch outcome {
                case .delivered: ("delivered", nil)
                case .retry(let date): ("pending", date)
                case .abandoned: ("abandoned", nil)
                }
            try db.execute(
                sql: """
                    UPDATE callback_deliveries SET attempts = attempts + 1, state = ?,
                        next_attempt_at = coalesce(?, next_attempt_at) WHERE id = ?
                    """,
                arguments: [state, next?.millis, delivery.id])
            return try Self.insertEvents([event], taskID: delivery.taskID, coreID: delivery.coreID, db)[0]
        }
    }

    public func nextCallbackTime() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM callback_deliveries WHERE state = 'pending'")
                .map(Date.init(millis:))
        }
    }

    /// Queues the callbacks a task change calls for (inside the change's transaction).
    static func queueCallbacks(for task: TaskRecord, events: [EventRecord], _ db: Database) throws {
        guard let url = Callback.url(in: task.metadata) else { return }
        for event in events where Callback.triggers[event.type] != nil {
            try db.execute(
                sql: """
                    INSERT INTO callback_deliveries (id, task_id, core_id, url, body, next_attempt_at, state, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)
                    """,
                arguments: [
                    Identifier.make("callback"), task.id, task.coreID, url, Data(Callback.body(for: event, task: task)),
                    event.timestamp.millis, event.timestamp.millis,
                ])
        }
    }
}
