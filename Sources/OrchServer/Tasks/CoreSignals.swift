import Foundation
import OrchCore
import OrchModels
import Synchronization

/// Wakes claims waiting on a core as soon as a task becomes claimable there (a dispatch, a
/// requeue, a scheduled task coming due), without polling.
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
            for event in events where Self.wakingTypes.contains(event.type) {
                if let core = event.coreID { self?.signal(core) }
            }
        }
    }

    /// Events after which a core may have a claimable task.
    static let wakingTypes: Set<EventType> = [.taskCreated, .taskRequeued, .taskReady]

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
    /// is cancelled, whichever comes first. The timer is a child task, cancelled as soon as a
    /// signal wins (a detached sleeper per wait used to outlive every early wake-up).
    func wait(on core: String, after version: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal(on: core, after: version) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns when `core`'s version is no longer `version`, or when the task is cancelled.
    private func waitForSignal(on core: String, after version: UInt64) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Under the lock the cancellation handler takes too: cancelled before this point,
                // the wait ends here; after it, the handler finds the waiter and resumes it.
                let registered = cores.withLock { cores -> Bool in
                    guard (cores[core]?.version ?? 0) == version, !Task.isCancelled else { return false }
                    cores[core, default: Core()].waiters[id] = continuation
                    return true
                }
                if !registered { continuation.resume() }
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
