import Foundation
import Logging
import ServiceLifecycle

/// Expires locks at their monotonic deadlines and hands them to the next waiter (see
/// ``DeadlineLoop``).
struct LockSupervisor: Service {
    let locks: LockManager
    let logger: Logger

    func run() async throws {
        await DeadlineLoop.run("lock supervisor", logger: logger) {
            guard let next = try await locks.expireDue() else { return nil }
            return Date().addingTimeInterval((next - ContinuousClock.now).seconds)
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
