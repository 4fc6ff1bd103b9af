import Foundation
import OrchStore

/// One reading of the server's state, shared by `/metrics` and the monitor.
struct SystemSample: Sendable {
    var takenAt: Date
    var queues: [CoreQueueSummary]
    /// `nil` when the database did not answer.
    var runningTasks: Int?
    var heldLocks: Int?
    var lockWaiters: Int
    /// Seconds the longest-waiting lock request has waited.
    var longestLockWait: Double
    /// Seconds a trivial query took; `nil` when it failed.
    var databaseLatency: Double?
    var process: ProcessStats

    /// Seconds `queue`'s longest-waiting task has been claimable.
    func age(of queue: CoreQueueSummary) -> Double {
        max(0, queue.oldestReadyAt.map { takenAt.timeIntervalSince($0) } ?? 0)
    }

    /// Takes a sample. Database figures are left out (`nil`, empty) when the database fails.
    static func take(store: any Store, locks: LockManager) async -> SystemSample {
        let started = ContinuousClock.now
        var latency: Double?
        if (try? await store.ping()) != nil { latency = (ContinuousClock.now - started).seconds }
        var sample = SystemSample(
            takenAt: Date(), queues: [], runningTasks: nil, heldLocks: nil, lockWaiters: 0,
            longestLockWait: 0, databaseLatency: latency, process: .read())
        if latency != nil {
            if let waiting = try? await locks.waiting() {
                (sample.lockWaiters, sample.longestLockWait) = waiting
            }
            sample.queues = (try? await store.queueSummary()) ?? []
            sample.runningTasks = try? await store.countTasks(status: .running)
            sample.heldLocks = try? await store.countHeldLocks()
        }
        return sample
    }
}
