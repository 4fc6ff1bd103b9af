import Foundation
import OrchCore
import Synchronization

/// Wakes claims waiting on a core as soon as a task becomes claimable there (a dispatch or a
/// requeue), without polling.
///
/// Each core has a version that every signal increments. A claimer reads the version, tries to
/// claim, and if nothing was there waits for the version to move past what it read, so a
/// dispatch landing between its attempt and its wait is never missed.
final class CoreSignals: Sendable {
    private struct Core {
        var version: UInt64 = 0
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let cores = Mutex<[String: Core]>([:])

    /// Listens on `bus` for events that make tasks claimable.
    init(bus: EventBus) {
        bus.listen { [weak self] events in
            for event in events where event.type == "task.created" || event.type == "task.requeued" {
                if let core = event.coreID { self?.signal(core) }
            }
        }
    }

    /// The core's current version.
    func version(of core: String) -> UInt64 {
        cores.withLock { $0[core]?.version ?? 0 }
    }

    /// Wakes every claim waiting on `core`.
    func signal(_ core: String) {
        let waiters = cores.withLock { cores -> [CheckedContinuation<Void, Never>] in
            var entry = cores[core, default: Core()]
            entry.version &+= 1
            let waiting = Array(entry.waiters.values)
            entry.waiters = [:]
            cores[core] = entry
            return waiting
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when `core`'s version is no longer `version`, after `timeout`, or when the task
    /// is cancelled, whichever comes first.
    func wait(on core: String, after version: UInt64, timeout: Duration) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let registered = cores.withLock { cores -> Bool in
                    guard (cores[core]?.version ?? 0) == version else { return false }
                    cores[core, default: Core()].waiters[id] = continuation
                    return true
                }
                guard registered else { return continuation.resume() }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.resume(core: core, id: id)
                }
            }
        } onCancel: {
            resume(core: core, id: id)
        }
    }

    private func resume(core: String, id: UUID) {
        let waiter = cores.withLock { $0[core]?.waiters.removeValue(forKey: id) }
        waiter?.resume()
    }

    /// Claims waiting right now, for tests and metrics.
    var waitingCount: Int {
        cores.withLock { $0.values.reduce(0) { $0 + $1.waiters.count } }
    }
}
