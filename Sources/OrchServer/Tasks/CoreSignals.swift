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
    /// What a claim waits for.
    enum Need: Sendable {
        /// A claimable task: a dispatch, a requeue, a task coming due, the core resumed.
        case task
        /// Room under the core's `max_running`: a run ending (or the cap changed), besides
        /// everything that wakes ``task``.
        case room
    }

    /// The versions a claimer read before trying.
    struct Versions: Sendable, Equatable {
        var task: UInt64 = 0
        var room: UInt64 = 0
    }

    private struct Waiter {
        var need: Need
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct Core {
        var versions = Versions()
        var waiters: [UUID: Waiter] = [:]
    }

    private let cores = Mutex<[String: Core]>([:])

    /// Listens on `bus` for events that make tasks claimable or free room.
    init(bus: EventBus) {
        bus.listen { [weak self] events in
            for event in events {
                guard let core = event.coreID else { continue }
                if Self.taskTypes.contains(event.type) {
                    self?.signal(core, .task)
                } else if Self.roomTypes.contains(event.type) {
                    self?.signal(core, .room)
                }
            }
        }
    }

    /// Events after which a core may have a claimable task.
    static let taskTypes: Set<EventType> = [.taskCreated, .taskRequeued, .taskReady, .coreUpdated]
    /// Events after which a capped core may have room (a run ended).
    static let roomTypes: Set<EventType> = [.taskCompleted, .taskFailed, .taskCancelled]

    /// The core's current versions.
    func versions(of core: String) -> Versions {
        cores.withLock { $0[core]?.versions ?? Versions() }
    }

    /// Wakes the claims waiting on `core` for `kind` (a ``Need/task`` signal wakes both kinds).
    func signal(_ core: String, _ kind: Need = .task) {
        let woken = cores.withLock { cores -> [CheckedContinuation<Void, Never>] in
            var entry = cores[core, default: Core()]
            if kind == .task { entry.versions.task &+= 1 }
            entry.versions.room &+= 1
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in entry.waiters where kind == .task || waiter.need == .room {
                woken.append(waiter.continuation)
                entry.waiters[id] = nil
            }
            cores[core] = entry
            return woken
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns when what `need` waits for moved past `versions`, after `timeout`, or when the
    /// task is cancelled, whichever comes first. The timer is a child task, cancelled as soon
    /// as a signal wins (a detached sleeper per wait used to outlive every early wake-up).
    func wait(on core: String, after versions: Versions, for need: Need = .task, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal(on: core, after: versions, for: need) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal(on core: String, after versions: Versions, for need: Need) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Under the lock the cancellation handler takes too: cancelled before this point,
                // the wait ends here; after it, the handler finds the waiter and resumes it.
                let registered = cores.withLock { cores -> Bool in
                    let current = cores[core]?.versions ?? Versions()
                    let moved = need == .task ? current.task != versions.task : current.room != versions.room
                    guard !moved, !Task.isCancelled else { return false }
                    cores[core, default: Core()].waiters[id] = Waiter(need: need, continuation: continuation)
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
        waiter?.continuation.resume()
    }

    /// Claims waiting right now, for tests and metrics.
    var waitingCount: Int {
        cores.withLock { $0.values.reduce(0) { $0 + $1.waiters.count } }
    }
}
