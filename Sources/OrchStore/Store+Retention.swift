import Foundation
import OrchModels

/// Deleting what retention no longer keeps (``OrchCore/RetentionPolicy``), in small batches so
/// that no batch holds up writers for long.
public protocol RetentionStore: Sendable {
    /// Deletes up to `limit` tasks in `status` (a final one) whose last change is before
    /// `changedBefore`, oldest first, with their events and callback deliveries; returns how
    /// many tasks and events went. Counts per core and status drop with them.
    func pruneTasks(status: TaskStatus, changedBefore: Date, limit: Int) async throws -> PruneCount

    /// Deletes up to `limit` events that belong to no task and are older than `before`; returns
    /// how many.
    func pruneEvents(before: Date, limit: Int) async throws -> Int

    /// Deletes up to `limit` idempotency keys recorded before `keysBefore` (they no longer
    /// deduplicate) and up to `limit` webhook receipts received before `receiptsBefore`; returns
    /// the larger of the two counts (below `limit` when both kinds are done).
    func pruneExpired(keysBefore: Date, receiptsBefore: Date, limit: Int) async throws -> Int

    /// Whether every write waits for the one before it (SQLite's single writer): a pruning
    /// batch then holds up each dispatch that arrives while it runs, so the pruner keeps its
    /// batches to a couple of milliseconds. PostgreSQL's batches lock only the rows they delete.
    var serializesWrites: Bool { get }

    /// Gives the space of deleted rows back to the file system where the backend can do so
    /// without stopping writers (SQLite's incremental vacuum); PostgreSQL's autovacuum reuses
    /// it by itself.
    func reclaimSpace() async throws
}

/// What one ``RetentionStore/pruneTasks(status:changedBefore:limit:)`` batch deleted.
public struct PruneCount: Sendable, Equatable {
    public var tasks: Int
    public var events: Int

    public init(tasks: Int, events: Int) {
        self.tasks = tasks
        self.events = events
    }
}
