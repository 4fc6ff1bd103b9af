import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func createSchedule(_ schedule: ScheduleRecord) async throws {
        try await write { db in try Self.writeSchedule(schedule, insert: true, db) }
    }

    public func schedule(id: String) async throws -> ScheduleRecord? {
        try await read { db in try Self.fetchSchedule(id, db) }
    }

    public func listSchedules(limit: Int, offset: Int) async throws -> (total: Int, schedules: [ScheduleRecord]) {
        try await read { db in
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM schedules") ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM schedules ORDER BY name, id LIMIT ? OFFSET ?", arguments: [limit, offset])
            return (total, try rows.map(Self.scheduleRecord))
        }
    }

    public func updateSchedule(id: String, _ change: @escaping @Sendable (ScheduleRecord) throws -> ScheduleRecord)
        async throws -> ScheduleRecord
    {
        try await write { db in
            guard let current = try Self.fetchSchedule(id, db) else {
                throw OrchError.notFound("Schedule \(id) not found", details: ["schedule_id": .string(id)])
            }
            let next = try change(current)
            try Self.writeSchedule(next, insert: false, db)
            return next
        }
    }

    public func deleteSchedule(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM schedule_firings WHERE schedule_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM schedules WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func fireSchedules(now: Date, limit: Int, _ fire: @escaping @Sendable (ScheduleRecord) -> ScheduleFiring?)
        async throws -> [FiredSchedule]
    {
        try await write { db in
            let due = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ?
                    ORDER BY next_run_at LIMIT ?
                    """,
                arguments: [now.millis, limit]
            ).map(Self.scheduleRecord)
            var fired: [FiredSchedule] = []
            for schedule in due {
                guard let firing = fire(schedule) else { continue }
                try db.execute(
                    sql: "INSERT OR IGNORE INTO schedule_firings (schedule_id, slot, task_id, fired_at) VALUES (?, ?, ?, ?)",
                    arguments: [schedule.id, firing.slot.millis, firing.transition.task.id, now.millis])
                // The slot was fired before: move the schedule on without a second task.
                if db.changesCount == 0 {
                    var moved = schedule
                    moved.nextRunAt = firing.schedule.nextRunAt
                    try Self.writeSchedule(moved, insert: false, db)
                    continue
                }
                try Self.insertTaskRow(firing.transition.task, db)
                let events = try Self.insertEvents(firing.transition.events, for: firing.transition.task, db)
                try Self.writeSchedule(firing.schedule, insert: false, db)
                fired.append(FiredSchedule(schedule: firing.schedule, task: firing.transition.task, events: events))
            }
            return fired
        }
    }

    public func nextScheduleRun() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(
                db, sql: "SELECT min(next_run_at) FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL"
            ).map(Date.init(millis:))
        }
    }

    static func fetchSchedule(_ id: String, _ db: Database) throws -> ScheduleRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM schedules WHERE id = ?", arguments: [id]).map(scheduleRecord)
    }

    static func writeSchedule(_ schedule: ScheduleRecord, insert: Bool, _ db: Database) throws {
        let values: [(any DatabaseValueConvertible)?] = [
            schedule.name, schedule.coreID, schedule.cron, schedule.every, schedule.timezone,
            try ScheduleTemplateColumn.encode(schedule.template), schedule.paused, schedule.createdAt.millis,
            schedule.updatedAt.millis, schedule.anchorAt.millis, schedule.nextRunAt?.millis, schedule.lastRunAt?.millis,
            schedule.lastTaskID, schedule.createdBy,
        ]
        do {
            if insert {
                try db.execute(
                    sql: """
                        INSERT INTO schedules (name, core_id, cron, every, timezone, template, paused, created_at,
                            updated_at, anchor_at, next_run_at, last_run_at, last_task_id, created_by, id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: StatementArguments(values + [schedule.id]))
            } else {
                try db.execute(
                    sql: """
                        UPDATE schedules SET name = ?, core_id = ?, cron = ?, every = ?, timezone = ?, template = ?,
                            paused = ?, created_at = ?, updated_at = ?, anchor_at = ?, next_run_at = ?, last_run_at = ?,
                            last_task_id = ?, created_by = ?
                        WHERE id = ?
                        """,
                    arguments: StatementArguments(values + [schedule.id]))
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw OrchError.conflict(ScheduleTemplateColumn.nameTaken, details: ["field": "name"])
        }
    }

    static func scheduleRecord(_ row: Row) throws -> ScheduleRecord {
        ScheduleRecord(
            id: row["id"], name: row["name"], coreID: row["core_id"], cron: row["cron"], every: row["every"],
            timezone: row["timezone"], template: try ScheduleTemplateColumn.decode(row["template"]), paused: row["paused"],
            createdAt: Date(millis: row["created_at"]), updatedAt: Date(millis: row["updated_at"]),
            anchorAt: Date(millis: row["anchor_at"]), nextRunAt: (row["next_run_at"] as Int64?).map(Date.init(millis:)),
            lastRunAt: (row["last_run_at"] as Int64?).map(Date.init(millis:)), lastTaskID: row["last_task_id"],
            createdBy: row["created_by"])
    }
}
