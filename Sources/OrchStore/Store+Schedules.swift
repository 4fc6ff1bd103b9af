import Foundation
import OrchCore
import OrchModels

/// A firing as stored: the schedule after it, and the task it dispatched with its events.
public struct FiredSchedule: Sendable {
    public var schedule: ScheduleRecord
    public var task: TaskRecord
    public var events: [EventRecord]

    public init(schedule: ScheduleRecord, task: TaskRecord, events: [EventRecord]) {
        self.schedule = schedule
        self.task = task
        self.events = events
    }
}

/// Recurring schedules and their firings.
public protocol ScheduleStore: Sendable {
    /// Inserts a schedule. Throws `RESOURCE_CONFLICT` naming `name` when the name is taken.
    func createSchedule(_ schedule: ScheduleRecord) async throws

    func schedule(id: String) async throws -> ScheduleRecord?

    /// A page of schedules by name, and how many there are.
    func listSchedules(limit: Int, offset: Int) async throws -> (total: Int, schedules: [ScheduleRecord])

    /// Reads the schedule, applies `change` and stores the result, atomically. Throws 404 for
    /// an unknown schedule, `RESOURCE_CONFLICT` naming `name` when the new name is taken.
    func updateSchedule(id: String, _ change: @escaping @Sendable (ScheduleRecord) throws -> ScheduleRecord) async throws
        -> ScheduleRecord

    /// Removes a schedule and its firing keys; whether there was one.
    func deleteSchedule(id: String) async throws -> Bool

    /// Fires schedules due at `now` (up to `limit`, earliest first): for each, `fire` makes the
    /// firing, and its task and events, the schedule's new state and the key of its slot are
    /// stored in one transaction. A slot whose key is already stored is not fired again, and
    /// with several nodes each due schedule is fired by one of them.
    func fireSchedules(now: Date, limit: Int, _ fire: @escaping @Sendable (ScheduleRecord) -> ScheduleFiring?) async throws
        -> [FiredSchedule]

    /// The earliest `next_run_at` of a schedule that is not paused, `nil` when none.
    func nextScheduleRun() async throws -> Date?
}
