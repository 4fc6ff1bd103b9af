import Foundation
import Logging
import OrchStore
import ServiceLifecycle

/// Expires locks at their `expires_at` and hands them to the next waiter (see ``DeadlineLoop``).
struct LockSupervisor: Service {
    let store: any Store
    let locks: LockManager
    let logger: Logger

    func run() async throws {
        await DeadlineLoop.run("lock supervisor", logger: logger) {
            for resource in try await store.lapsedLockResources(now: Date()) {
                try await locks.expire(resource: resource)
            }
            return try await store.nextLockExpiry()
        }
    }
}
