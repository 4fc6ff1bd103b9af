import Foundation
import Logging
import OrchStore
import ServiceLifecycle

/// Expires locks at their `expires_at` and hands them to the next waiter: sleeps until the
/// earliest expiry the store knows of, at most `maximumSleep` (so a lock granted meanwhile, whose
/// TTL is at least 1 s, is never late by more than that).
struct LockSupervisor: Service {
    let store: any Store
    let locks: LockManager
    let logger: Logger
    var maximumSleep: Duration = .seconds(1)

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var sleep = maximumSleep
            do {
                for resource in try await store.lapsedLockResources(now: Date()) {
                    try await locks.expire(resource: resource)
                }
                if let next = try await store.nextLockExpiry() {
                    let seconds = max(0.001, next.timeIntervalSinceNow)
                    sleep = min(sleep, .milliseconds(Int64(seconds * 1000) + 1))
                }
            } catch {
                logger.error("lock supervisor: sweep failed", metadata: ["error": "\(error)"])
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
