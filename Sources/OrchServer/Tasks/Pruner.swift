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
/// Work goes in batches of `batchSize` tasks (each one short transaction) with a pause between
/// them, so a dispatch waits behind at most one batch. Every node runs it; on PostgreSQL the
/// batches lock their rows with `SKIP LOCKED`, so nodes split the work.
struct Pruner: Service {
    let store: any Store
    let policy: RetentionPolicy
    let interval: Duration
    /// Webhook receipts are kept twice the signature tolerance, as the webhook handler keeps them.
    let receiptLifetime: TimeInterval
    let metrics: OrchMetrics
    let logger: Logger
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
        for status in [TaskStatus.completed, .failed, .cancelled] {
            guard let keep = policy.tasks[status], keep > 0 else { continue }
            let cutoff = now.addingTimeInterval(-TimeInterval(keep))
            while !Task.isShuttingDownGracefully {
                let batch = try await store.pruneTasks(status: status, changedBefore: cutoff, limit: batchSize)
                total.tasks += batch.tasks
                total.events += batch.events
                metrics.recordPruned(tasks: batch.tasks, events: batch.events)
                if batch.tasks < batchSize { break }
                try await Task.sleep(for: pause)
            }
        }
        if policy.events > 0 {
            let cutoff = now.addingTimeInterval(-TimeInterval(policy.events))
            while !Task.isShuttingDownGracefully {
                let events = try await store.pruneEvents(before: cutoff, limit: batchSize * 4)
                total.events += events
                metrics.recordPruned(tasks: 0, events: events)
                if events < batchSize * 4 { break }
                try await Task.sleep(for: pause)
            }
        }
        try await store.pruneExpired(
            keysBefore: now.addingTimeInterval(-DispatchController.idempotencyWindow),
            receiptsBefore: now.addingTimeInterval(-receiptLifetime))
        if total.tasks > 0 || total.events > 0 {
            try await store.reclaimSpace()
            logger.info("pruned", metadata: ["tasks": "\(total.tasks)", "events": "\(total.events)"])
        }
        return total
    }
}
