import Foundation
import Logging
import OrchCore
import OrchStore
import ServiceLifecycle

/// Fails tasks that run past their timeout, takes back tasks whose lease ran out, and moves
/// `scheduled` tasks into their core's queue when their `run_at` comes, at the moment it
/// happens (see ``DeadlineLoop``). Every node runs one; the store hands each task to one of
/// them.
struct TaskSupervisor: Service {
    let store: any Store
    let bus: EventBus
    let logger: Logger
    /// Most tasks changed in one transaction; a full batch is followed by another at once.
    var batchSize = 500

    func run() async throws {
        await DeadlineLoop.run("task supervisor", logger: logger) {
            let now = Date()
            let expired = try await store.expireTasks(now: now, limit: batchSize) { task in
                TaskLifecycle.expire(task, now: now)
            }
            bus.publish(expired.flatMap(\.events))
            let promoted = try await store.promoteTasks(now: now, limit: batchSize) { task in
                TaskLifecycle.promote(task, now: now)
            }
            bus.publish(promoted.flatMap(\.events))
            if expired.count == batchSize || promoted.count == batchSize { return now }
            return [try await store.nextExpiry(), try await store.nextPromotion()].compactMap { $0 }.min()
        }
    }
}
