import Foundation
import Logging
import OrchCore
import OrchStore
import ServiceLifecycle

/// Fails tasks that run past their timeout and takes back tasks whose lease ran out, at the
/// moment it happens: it sleeps until the earliest deadline the store knows of (at most
/// `maximumSleep`, so deadlines set while it sleeps are never missed by more than that).
struct TaskSupervisor: Service {
    let store: any Store
    let bus: EventBus
    let logger: Logger
    /// Longest time between two looks at the store. Leases and timeouts are at least 1 s, so
    /// with 1 s no deadline is missed by more than the time a sweep takes.
    var maximumSleep: Duration = .seconds(1)
    /// Most tasks changed in one transaction.
    var batchSize = 500

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var sleep = maximumSleep
            do {
                let now = Date()
                let changed = try await store.expireTasks(now: now, limit: batchSize) { task in
                    TaskLifecycle.expire(task, now: now)
                }
                bus.publish(changed.flatMap(\.events))
                if changed.count == batchSize { continue }
                if let next = try await store.nextExpiry() {
                    let seconds = max(0.001, next.timeIntervalSinceNow)
                    sleep = min(sleep, .milliseconds(Int64(seconds * 1000) + 1))
                }
            } catch {
                logger.error("task supervisor: sweep failed", metadata: ["error": "\(error)"])
            }
            let pause = sleep
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch {
                return
            }
        }
    }
}
