import Foundation
import Logging
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// Deletes what retention no longer keeps (``OrchCore/RetentionPolicy``), every `interval`:
/// finished tasks older than their status's retention with their events and callbacks, events
/// of no task older than theirs, expired idempotency keys and webhook receipts; then gives the
/// space back (SQLite). Queued, scheduled and running tasks are never touched.
///
/// Work goes in short batches (each one transaction) with a pause between them, so a dispatch
/// waits behind at most one batch. Where writes queue behind one another
/// (``OrchStore/RetentionStore/serializesWrites``, SQLite) every dispatch arriving during a
/// batch waits for it, so batches there are a fifth of `batchSize`: measured with
/// `orch bench retention` (1,000,000 tasks, four dispatchers), batches of 500 held the writer
/// 9 ms at a time and the dispatch p99 went from 2.8 ms to 14.8 ms. Every node runs it; on
/// PostgreSQL the batches lock their rows with `SKIP LOCKED`, so nodes split the work.
struct Pruner: Service {
    let store: any Store
    let policy: RetentionPolicy
    let interval: Duration
    /// Webhook receipts are kept twice the signature tolerance, as the webhook handler keeps them.
    let receiptLifetime: TimeInterval
    let metrics: OrchMetrics
    let logger: Logger
    /// The most tasks one batch deletes (four times as many free events, or keys and receipts).
    var batchSize = 500
    var pause: Duration = .milliseconds(5)

    func run() async throws {
        await DeadlineLoop.run("pruner", maximumSleep: interval, logger: logger) {
            try await prune(now: Date())
            return nil
        }
    }

    /// One pass; returns what it deleted.
    @discardableResult
    func prune(now: Date) async throws -> PruneCount {
        var total = PruneCount(tasks: 0, events: 0)
        let size = store.serializesWrites ? max(1, batchSize / 5) : batchSize
        for status in [TaskStatus.completed, .failed, .cancelled] {
            guard let keep = policy.tasks[status], keep > 0 else { continue }
            let cutoff = now.addingTimeInterval(-TimeInterval(keep))
            try await repeatBatches(of: size) { limit in
                let batch = try await store.pruneTasks(status: status, changedBefore: cutoff, limit: limit)
                total.tasks += batch.tasks
                total.events += batch.events
                metrics.recordPruned(tasks: batch.tasks, events: batch.events)
                return batch.tasks
            }
        }
        if policy.events > 0 {
            let cutoff = now.addingTimeInterval(-TimeInterval(policy.events))
            try await repeatBatches(of: size * 4) { limit in
                let events = try await store.pruneEvents(before: cutoff, limit: limit)
                total.events += events
                metrics.recordPruned(tasks: 0, events: events)
                return events
            }
        }
        let keysBefore = now.addingTimeInterval(-DispatchController.idempotencyWindow)
        let receiptsBefore = now.addingTimeInterval(-receiptLifetime)
        try await repeatBatches(of: size * 4) { limit in
            try await store.pruneExpired(keysBefore: keysBefore, receiptsBefore: receiptsBefore, limit: limit)
        }
        if total.tasks > 0 || total.events > 0 {
            try await store.reclaimSpace()
            logger.info("pruned", metadata: ["tasks": "\(total.tasks)", "events": "\(total.events)"])
        }
        return total
    }

    /// Runs `batch` with `limit` until it deletes fewer than that or the server shuts down,
    /// pausing between batches.
    private func repeatBatches(of limit: Int, _ batch: (Int) async throws -> Int) async throws {
        while !Task.isShuttingDownGracefully {
            if try await batch(limit) < limit { return }
            try await Task.sleep(for: pause)
        }
    }
}
