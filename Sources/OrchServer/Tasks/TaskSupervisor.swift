import Foundation
import Logging
import OrchCore
import OrchStore
import ServiceLifecycle

/// Fails tasks that run past their timeout and takes back tasks whose lease ran out, at the
/// moment it happens (see ``DeadlineLoop``).
struct TaskSupervisor: Service {
    let store: any Store
    let bus: EventBus
    let logger: Logger
    /// Most tasks changed in one transaction; a full batch is followed by another at once.
    var batchSize = 500

    func run() async throws {
        await DeadlineLoop.run("task supervisor", logger: logger) {
            let now = Date()
            let changed = try await store.expireTasks(now: now, limit: batchSize) { task in
                TaskLifecycle.expire(task, now: now)
            }
            bus.publish(changed.flatMap(\.events))
            if changed.count == batchSize { return now }
            return try await store.nextExpiry()
        }
    }
}
