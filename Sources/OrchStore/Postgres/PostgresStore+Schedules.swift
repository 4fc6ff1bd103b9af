import Foundation
import OrchCore
import OrchModels
import PostgresNIO

extension PostgresStore {
    static let scheduleColumns = """
        id, name, core_id, cron, every, timezone, template::text AS template, paused, created_at, updated_at, anchor_at,
        next_run_at, last_run_at, last_task_id, created_by
        """

    public func createSchedule(_ schedule: ScheduleRecord) async throws {
        try await transaction { transaction in try await Self.writeSchedule(schedule, insert: true, transaction) }
    }

    public func schedule(id: String) async throws -> ScheduleRecord? {
        try await rows("SELECT \(unescaped: Self.scheduleColumns) FROM schedules WHERE id = \(id)").first.map(Self.scheduleRecord)
    }

    public func listSchedules(limit: Int, offset: Int) async throws -> (total: Int, schedules: [ScheduleRecord]) {
        try await transaction { transaction in
            let total = try await transaction.rows("SELECT count(*)::bigint AS n FROM schedules").first?.int("n") ?? 0
            let rows = try await transaction.rows(
                """
                SELECT \(unescaped: Self.scheduleColumns) FROM schedules ORDER BY name, id
                LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
                """)
            return (total, try rows.map(Self.scheduleRecord))
        }
    }

    public func updateSchedule(id: String, _ change: @escaping @Sendable (ScheduleRecord) throws -> ScheduleRecord)
        async throws -> ScheduleRecord
    {
        try await transaction { transaction in
            guard
                let current = try await transaction.rows(
                    "SELECT \(unescaped: Self.scheduleColumns) FROM schedules WHERE id = \(id) FOR UPDATE"
                ).first.map(Self.scheduleRecord)
            else {
                throw OrchError.notFound("Schedule \(id) not found", details: ["schedule_id": .string(id)])
            }
            let next = try change(current)
            try await Self.writeSchedule(next, insert: false, transaction)
            return next
        }
    }

    public func deleteSchedule(id: String) async throws -> Bool {
        try await transaction { transaction in
            try await transaction.execute("DELETE FROM schedule_firings WHERE schedule_id = \(id)")
            return try await transaction.rows("DELETE FROM schedules WHERE id = \(id) RETURNING 1 AS gone").count > 0
        }
    }

    /// Due schedules are locked with `SKIP LOCKED`, so nodes firing at once split them; the
    /// slot's key (`ON CONFLICT DO NOTHING`) keeps a slot from firing twice even so.
    public func fireSchedules(now: Date, limit: Int, _ fire: @escaping @Sendable (ScheduleRecord) -> ScheduleFiring?)
        async throws -> [FiredSchedule]
    {
        try await transaction { transaction in
            let due = try await transaction.rows(
                """
                SELECT \(unescaped: Self.scheduleColumns) FROM schedules
                WHERE NOT paused AND next_run_at IS NOT NULL AND next_run_at <= \(now.sqlTime)
                ORDER BY next_run_at LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
                """
            ).map(Self.scheduleRecord)
            var fired: [FiredSchedule] = []
            for schedule in due {
                guard let firing = fire(schedule) else { continue }
                let keyed = try await transaction.rows(
                    """
                    INSERT INTO schedule_firings (schedule_id, slot, task_id, fired_at)
                    VALUES (\(schedule.id), \(firing.slot.sqlTime), \(firing.transition.task.id), \(now.sqlTime))
                    ON CONFLICT DO NOTHING RETURNING 1 AS fired
                    """)
                if keyed.isEmpty {
                    var moved = schedule
                    moved.nextRunAt = firing.schedule.nextRunAt
                    try await Self.writeSchedule(moved, insert: false, transaction)
                    continue
                }
                try await transaction.execute(
                    PostgresQuery(unsafeSQL: Self.insertTasksSQL, binds: Self.bindings(Self.taskRows([firing.transition.task]))))
                let events = try await Self.insertEvents(Self.pendingEvents([firing.transition]), transaction)
                try await Self.writeSchedule(firing.schedule, insert: false, transaction)
                fired.append(FiredSchedule(schedule: firing.schedule, task: firing.transition.task, events: events))
            }
            return fired
        }
    }

    public func nextScheduleRun() async throws -> Date? {
        try await row(
            "SELECT min(next_run_at) AS next FROM schedules WHERE NOT paused AND next_run_at IS NOT NULL"
        )?.optionalDate("next")
    }

    static func writeSchedule(_ schedule: ScheduleRecord, insert: Bool, _ transaction: PostgresTransaction) async throws {
        let template = try ScheduleTemplateColumn.encode(schedule.template)
        do {
            if insert {
                try await transaction.execute(
                    """
                    INSERT INTO schedules (id, name, core_id, cron, every, timezone, template, paused, created_at,
                        updated_at, anchor_at, next_run_at, last_run_at, last_task_id, created_by)
                    VALUES (\(schedule.id), \(schedule.name), \(schedule.coreID), \(schedule.cron), \(schedule.every),
                        \(schedule.timezone), \(template)::jsonb, \(schedule.paused), \(schedule.createdAt.sqlTime),
                        \(schedule.updatedAt.sqlTime), \(schedule.anchorAt.sqlTime), \(schedule.nextRunAt?.sqlTime),
                        \(schedule.lastRunAt?.sqlTime), \(schedule.lastTaskID), \(schedule.createdBy))
                    """)
            } else {
                try await transaction.execute(
                    """
                    UPDATE schedules SET name = \(schedule.name), core_id = \(schedule.coreID), cron = \(schedule.cron),
                        every = \(schedule.every), timezone = \(schedule.timezone), template = \(template)::jsonb,
                        paused = \(schedule.paused), updated_at = \(schedule.updatedAt.sqlTime),
                        anchor_at = \(schedule.anchorAt.sqlTime), next_run_at = \(schedule.nextRunAt?.sqlTime),
                        last_run_at = \(schedule.lastRunAt?.sqlTime), last_task_id = \(schedule.lastTaskID)
                    WHERE id = \(schedule.id)
                    """)
            }
        } catch let error where PostgresFault.isUniqueViolation(error) {
            throw OrchError.conflict(ScheduleTemplateColumn.nameTaken, details: ["field": "name"])
        }
    }

    static func scheduleRecord(_ row: PostgresRandomAccessRow) throws -> ScheduleRecord {
        ScheduleRecord(
            id: try row.decode("id"), name: try row.decode("name"), coreID: try row.decode("core_id"),
            cron: try row.decode("cron"), every: try row.decode("every"), timezone: try row.decode("timezone"),
            template: try ScheduleTemplateColumn.decode(try row.decode("template")), paused: try row.decode("paused"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            anchorAt: try row.date("anchor_at"), nextRunAt: try row.optionalDate("next_run_at"),
            lastRunAt: try row.optionalDate("last_run_at"), lastTaskID: try row.decode("last_task_id"),
            createdBy: try row.decode("created_by"))
    }
}
