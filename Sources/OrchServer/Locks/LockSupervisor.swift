import Foundation
import Logging
import ServiceLifecycle

/// Expires locks when their time is up and hands them to the next waiter (see ``DeadlineLoop``).
struct LockSupervisor: Service {
    let locks: LockManager
    let logger: Logger

    func run() async throws {
        await DeadlineLoop.run("lock supervisor", logger: logger) {
            try await locks.expireDue()
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
