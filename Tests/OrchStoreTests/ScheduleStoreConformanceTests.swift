import Foundation
import OrchCore
import OrchModels
import OrchStore
import Testing

/// Schedules on every backend: names unique, changes atomic, each slot fired once however
/// many firers race, missed slots fired once.
@Suite struct ScheduleStoreConformanceTests {
    static let backends = StoreBackend.all
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func schedule(_ name: String, every: String = "10s", at now: Date = start) throws -> ScheduleRecord {
        try ScheduleLifecycle.create(
            CreateScheduleRequest(
                name: name, coreID: "core", every: every,
                task: ScheduleTaskTemplate(priority: 4, metadata: ["kind": "report"])),
            id: Identifier.make("schedule"), createdBy: "user-1", now: now)
    }

    static func fire(_ store: any Store, at now: Date) async throws -> [FiredSchedule] {
        try await store.fireSchedules(now: now, limit: 50) { schedule in
            ScheduleLifecycle.fire(schedule, taskID: Identifier.make("task"), now: now)
        }
    }

    @Test(arguments: backends)
    func schedulesAreStoredListedChangedAndDeleted(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let first = try Self.schedule("b-report")
            try await store.createSchedule(first)
            try await store.createSchedule(try Self.schedule("a-cleanup"))
            #expect(try await store.schedule(id: first.id) == first)
            await #expect {
                try await store.createSchedule(try Self.schedule("b-report"))
            } throws: { error in
                (error as? OrchError)?.status == 409 && (error as? OrchError)?.details["field"] == "name"
            }
            let (total, page) = try await store.listSchedules(limit: 10, offset: 0)
            #expect(total == 2 && page.map(\.name) == ["a-cleanup", "b-report"])
            let renamed = try await store.updateSchedule(id: first.id) { schedule in
                try ScheduleLifecycle.update(schedule, with: UpdateScheduleRequest(name: "c-report", paused: true), now: Self.start)
            }
            #expect(renamed.name == "c-report" && renamed.paused && renamed.nextRunAt == nil)
            #expect(try await store.schedule(id: first.id) == renamed)
            await #expect {
                _ = try await store.updateSchedule(id: first.id) { schedule in
                    var taken = schedule
                    taken.name = "a-cleanup"
                    return taken
                }
            } throws: { error in (error as? OrchError)?.status == 409 }
            await #expect {
                _ = try await store.updateSchedule(id: "schedule-none") { $0 }
            } throws: { error in (error as? OrchError)?.status == 404 }
            #expect(try await store.deleteSchedule(id: first.id))
            #expect(try await store.deleteSchedule(id: first.id) == false)
            #expect(try await store.schedule(id: first.id) == nil)
        }
    }

    @Test(arguments: backends)
    func aDueScheduleFiresOneTaskAndMissedSlotsFireOnce(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let schedule = try Self.schedule("every-ten")
            try await store.createSchedule(schedule)
            #expect(schedule.nextRunAt == Self.start.addingTimeInterval(10))
            #expect(try await store.nextScheduleRun() == Self.start.addingTimeInterval(10))
            #expect(try await Self.fire(store, at: Self.start.addingTimeInterval(9)).isEmpty)
            let fired = try await Self.fire(store, at: Self.start.addingTimeInterval(10))
            #expect(fired.count == 1)
            let task = try #require(fired.first?.task)
            #expect(task.coreID == "core" && task.priority == 4 && task.status == .queued)
            #expect(task.metadata["schedule_id"] == .string(schedule.id) && task.metadata["kind"] == "report")
            #expect(try await store.task(id: task.id) != nil)
            #expect(fired.first?.events.map(\.type.rawValue) == ["task.created"])
            let after = try #require(try await store.schedule(id: schedule.id))
            #expect(after.lastTaskID == task.id && after.nextRunAt == Self.start.addingTimeInterval(20))
            // Down for a minute: the six missed slots fire once, and the next is after now.
            let late = Self.start.addingTimeInterval(75)
            #expect(try await Self.fire(store, at: late).count == 1)
            #expect(try await Self.fire(store, at: late).isEmpty)
            #expect(try await store.schedule(id: schedule.id)?.nextRunAt == Self.start.addingTimeInterval(80))
            #expect(try await store.listTasks(TaskQuery(coreID: "core")).total == 2)
            // Paused: nothing fires.
            _ = try await store.updateSchedule(id: schedule.id) { s in
                try ScheduleLifecycle.update(s, with: UpdateScheduleRequest(paused: true), now: late)
            }
            #expect(try await Self.fire(store, at: Self.start.addingTimeInterval(500)).isEmpty)
            #expect(try await store.nextScheduleRun() == nil)
        }
    }

    /// Eight firers at once over 20 due schedules: each fires once.
    @Test(arguments: backends)
    func concurrentFirersFireEachSlotOnce(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            for index in 0..<20 { try await store.createSchedule(try Self.schedule("s\(index)")) }
            let due = Self.start.addingTimeInterval(10)
            let fired = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<8 {
                    group.addTask { try await Self.fire(store, at: due).map(\.schedule.id) }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(fired.count == 20 && Set(fired).count == 20)
            #expect(try await store.listTasks(TaskQuery(coreID: "core")).total == 20)
        }
    }

    /// A slot already fired (its key stored) is not fired again even if the schedule's state
    /// says it is due: the key, not the state alone, makes the firing once.
    @Test(arguments: backends)
    func aSlotWhoseKeyIsStoredIsNotFiredTwice(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let schedule = try Self.schedule("keyed")
            try await store.createSchedule(schedule)
            let due = Self.start.addingTimeInterval(10)
            #expect(try await Self.fire(store, at: due).count == 1)
            // Put the schedule back on the slot it has fired, as a stale writer might.
            _ = try await store.updateSchedule(id: schedule.id) { s in
                var stale = s
                stale.nextRunAt = due
                return stale
            }
            #expect(try await Self.fire(store, at: due).isEmpty)
            #expect(try await store.listTasks(TaskQuery(coreID: "core")).total == 1)
            #expect(try await store.schedule(id: schedule.id)?.nextRunAt == Self.start.addingTimeInterval(20))
        }
    }
}
