import Foundation
import Logging
import OrchCore
import OrchStore
import ServiceLifecycle

/// Fires recurring schedules when their slot comes (see ``DeadlineLoop``: at the slot, or
/// within a second of a schedule created or changed while it slept). Every node runs one; the
/// store gives each due schedule to one of them and keys each firing by schedule and slot, so
/// a slot dispatches exactly one task.
struct ScheduleRunner: Service {
    let store: any Store
    let bus: EventBus
    let logger: Logger
    /// Most schedules fired in one transaction; a full batch is followed by another at once.
    var batchSize = 100

    func run() async throws {
        await DeadlineLoop.run("schedule runner", logger: logger) {
            let now = Date()
            let fired = try await store.fireSchedules(now: now, limit: batchSize) { schedule in
                ScheduleLifecycle.fire(schedule, taskID: Identifier.make("task"), now: now)
            }
            bus.publish(fired.flatMap(\.events))
            for firing in fired {
                logger.debug(
                    "schedule fired",
                    metadata: ["schedule_id": "\(firing.schedule.id)", "task_id": "\(firing.task.id)"])
            }
            if fired.count == batchSize { return now }
            return try await store.nextScheduleRun()
        }
    }
}
