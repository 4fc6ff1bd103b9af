import Foundation
import OrchCore
import OrchModels
import PostgresNIO

extension PostgresStore {
    public func coreSummaries(coreID: String?, activeSince: Date) async throws -> [CoreSummary] {
        // `''` stands for every core (no core id is empty).
        let only = coreID ?? ""
        return try await transaction { transaction in
            let ids = try await transaction.rows(
                """
                SELECT core_id FROM (
                    SELECT DISTINCT core_id FROM task_counts
                    UNION SELECT core_id FROM cores
                    UNION SELECT DISTINCT core_id FROM workers WHERE last_seen >= \(activeSince.sqlTime)) known
                WHERE \(only) = '' OR core_id = \(only)
                ORDER BY core_id
                """
            ).map { try $0.decode("core_id", as: String.self) }
            var counts: [String: [String: Int]] = [:]
            for row in try await transaction.rows(
                """
                SELECT core_id, status, sum(n)::bigint AS n FROM task_counts
                WHERE status IN ('queued', 'scheduled', 'running') AND (\(only) = '' OR core_id = \(only))
                GROUP BY core_id, status
                """
            ) {
                counts[try row.decode("core_id"), default: [:]][try row.decode("status")] = try row.int("n")
            }
            var settings: [String: CoreSettings] = [:]
            for row in try await transaction.rows(
                "SELECT core_id, paused, max_running FROM cores WHERE \(only) = '' OR core_id = \(only)"
            ) {
                let id: String = try row.decode("core_id")
                settings[id] = CoreSettings(
                    coreID: id, paused: try row.decode("paused"), maxRunning: try row.optionalInt("max_running"))
            }
            var summaries: [CoreSummary] = []
            for id in ids {
                let core = counts[id] ?? [:]
                var oldest: Date?
                if core["queued", default: 0] > 0 {
                    // The first of each priority's range in the claim-order index: ten seeks.
                    oldest = try await transaction.rows(
                        """
                        SELECT min(first.ready_at) AS oldest FROM generate_series(1, 10) AS p(priority),
                        LATERAL (SELECT ready_at FROM tasks WHERE core_id = \(id) AND status = 'queued'
                            AND tasks.priority = p.priority ORDER BY ready_at LIMIT 1) first
                        """
                    ).first?.optionalDate("oldest")
                }
                summaries.append(
                    CoreSummary(
                        settings: settings[id] ?? CoreSettings(coreID: id), queued: core["queued", default: 0],
                        scheduled: core["scheduled", default: 0], running: core["running", default: 0],
                        activeWorkers: try await Self.coreLoad(coreID: id, since: activeSince, transaction).activeWorkers,
                        oldestQueuedAt: oldest))
            }
            return summaries
        }
    }

    public func updateCore(
        id: String, _ change: @escaping @Sendable (CoreSettings) throws -> CoreSettings,
        describe: @escaping @Sendable (CoreSettings) -> EventDraft
    ) async throws -> (settings: CoreSettings, event: EventRecord) {
        try await transaction { transaction in
            // The row first, so that racing changes of one core apply one after the other.
            try await transaction.execute(
                """
                INSERT INTO cores (core_id, updated_at) VALUES (\(id), \(Date().sqlTime))
                ON CONFLICT (core_id) DO NOTHING
                """)
            let current = try await Self.coreSettings(id, transaction, forUpdate: true) ?? CoreSettings(coreID: id)
            let settings = try change(current)
            try await transaction.execute(
                """
                UPDATE cores SET paused = \(settings.paused), max_running = \(settings.maxRunning.map(Int64.init)),
                    updated_at = \(Date().sqlTime)
                WHERE core_id = \(id)
                """)
            let events = try await Self.insertEvents([describe(settings)], taskID: nil, coreID: id, transaction)
            return (settings, events[0])
        }
    }

    static func coreSettings(_ id: String, _ transaction: PostgresTransaction, forUpdate: Bool = false) async throws
        -> CoreSettings?
    {
        let query: PostgresQuery =
            forUpdate
            ? "SELECT paused, max_running FROM cores WHERE core_id = \(id) FOR UPDATE"
            : "SELECT paused, max_running FROM cores WHERE core_id = \(id)"
        return try await transaction.rows(query).first.map { row in
            CoreSettings(coreID: id, paused: try row.decode("paused"), maxRunning: try row.optionalInt("max_running"))
        }
    }
}
