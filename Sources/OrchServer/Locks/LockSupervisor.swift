import Foundation
import Logging
import OrchStore
import ServiceLifecycle

/// Expires locks when their time is up and hands them to the next waiter (see ``DeadlineLoop``),
/// and notes every ``OrchStore/nodeHeartbeat`` that this node is alive, so that hand-offs
/// through any node count its waiters as live (``OrchStore/LockStore``).
///
/// Every node runs it: an expiry is decided by the store under the resource's lock, so one
/// node expires a lock (one `lock.expired`) and the others find it gone.
struct LockSupervisor: Service {
    let locks: LockManager
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await DeadlineLoop.run("lock supervisor", logger: logger) {
                    try await locks.expireDue()
                }
            }
            group.addTask {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    do {
                        try await locks.store.recordNodeSeen(locks.nodeID)
                    } catch {
                        logger.warning("cannot note this node as alive", metadata: ["error": "\(error)"])
                    }
                    guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: nodeHeartbeat) })) != nil
                    else { return }
                }
            }
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
