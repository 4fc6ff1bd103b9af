import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func coreSummaries(coreID: String?, activeSince: Date) async throws -> [CoreSummary] {
        try await read { db in
            let only = coreID.map { _ in "WHERE core_id = ?" } ?? ""
            let one: StatementArguments = coreID.map { [$0] } ?? []
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT core_id FROM (
                        SELECT DISTINCT core_id FROM task_counts
                        UNION SELECT core_id FROM cores
                        UNION SELECT DISTINCT core_id FROM workers WHERE last_seen >= ?)
                    \(only) ORDER BY core_id
                    """,
                arguments: [activeSince.millis] + one)
            var counts: [String: [String: [Int: Int]]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT core_id, status, priority, n FROM task_counts
                    WHERE status IN ('queued', 'scheduled', 'running') AND n > 0 \(coreID == nil ? "" : "AND core_id = ?")
                    """,
                arguments: one)
            {
                counts[row["core_id"], default: [:]][row["status"], default: [:]][row["priority"], default: 0] += row["n"] as Int
            }
            var settings: [String: CoreSettings] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT core_id, paused, max_running FROM cores \(only)", arguments: one) {
                settings[row["core_id"]] = CoreSettings(coreID: row["core_id"], paused: row["paused"], maxRunning: row["max_running"])
            }
            return try ids.map { id in
                let core = counts[id] ?? [:]
                // The oldest queued task of each priority is the first of its range in the
                // claim-order index: one seek per priority that has queued tasks.
                var oldest: Int64?
                for priority in (core["queued"] ?? [:]).keys {
                    let first = try Int64.fetchOne(
                        db.cachedStatement(
                            sql: """
                                SELECT min(ready_at) FROM tasks INDEXED BY tasks_claim_order
                                WHERE core_id = ? AND status = 'queued' AND priority = ?
                                """),
                        arguments: [id, priority])
                    if let first { oldest = min(oldest ?? first, first) }
                }
                return CoreSummary(
                    settings: settings[id] ?? CoreSettings(coreID: id), queued: Self.total(core["queued"]),
                    scheduled: Self.total(core["scheduled"]), running: Self.total(core["running"]),
                    activeWorkers: try Self.coreLoad(coreID: id, since: activeSince, db).activeWorkers,
                    oldestQueuedAt: oldest.map(Date.init(millis:)))
            }
        }
    }

    static func total(_ byPriority: [Int: Int]?) -> Int { byPriority?.values.reduce(0, +) ?? 0 }

    public func updateCore(
        id: String, _ change: @escaping @Sendable (CoreSettings) throws -> CoreSettings,
        describe: @escaping @Sendable (CoreSettings) -> EventDraft
    ) async throws -> (settings: CoreSettings, event: EventRecord) {
        try await write { db in
            let settings = try change(try Self.coreSettings(id, db) ?? CoreSettings(coreID: id))
            try db.execute(
                sql: """
                    INSERT INTO cores (core_id, paused, max_running, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (core_id) DO UPDATE
                        SET paused = excluded.paused, max_running = excluded.max_running, updated_at = excluded.updated_at
                    """,
                arguments: [id, settings.paused, settings.maxRunning, Date().millis])
            let event = try Self.insertEvents([describe(settings)], taskID: nil, coreID: id, db)
            return (settings, event[0])
        }
    }

    static func coreSettings(_ id: String, _ db: Database) throws -> CoreSettings? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT paused, max_running FROM cores WHERE core_id = ?"), arguments: [id]
        ).map { row in CoreSettings(coreID: id, paused: row["paused"], maxRunning: row["max_running"]) }
    }
}
