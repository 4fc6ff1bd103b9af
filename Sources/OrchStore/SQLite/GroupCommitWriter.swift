import GRDB
import Synchronization

/// Gathers concurrent writes into one transaction, so that N writers pay for one commit and one
/// fsync instead of N.
///
/// A caller submits a closure and suspends. Whenever no batch is being committed, the first
/// pending write starts one: every write that is waiting by then runs in the same transaction.
/// After the single commit every caller resumes with its own result. Under no concurrency this
/// is exactly one transaction per write; under load the batch grows by itself while the
/// previous commit's fsync is in flight.
///
/// One write's error must not undo the others. The batch first runs optimistically, the writes
/// one after another with nothing between them; if one throws, that transaction is rolled back
/// and the batch runs again with each write in its own savepoint, so the failing write is
/// rolled back alone and its error goes to its caller only. (Savepoints on every write made
/// SQLite keep a statement journal across the whole batch, whose in-memory form is walked from
/// its start at every statement: quadratic in the batch, and most of a large batch's time.)
/// Writes are closures over the database only, so running one twice is safe: the first run's
/// changes were rolled back.
final class GroupCommitWriter: Sendable {
    /// A write waiting for its batch.
    private struct PendingWrite: Sendable {
        /// Runs the write and keeps its outcome for `finish`; with `isolated`, inside a
        /// savepoint (and never throws), else throwing the write's error.
        let apply: @Sendable (Database, _ isolated: Bool) throws -> Void
        /// Resumes the caller; the argument is the commit's error, if the commit failed.
        let finish: @Sendable ((any Error)?) -> Void
    }

    /// A write of an optimistic batch failed: the batch is run again with savepoints.
    private struct WriteFailed: Error {}

    private struct State {
        var pending: [PendingWrite] = []
        var committing = false
    }

    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    /// The most writes one transaction gathers; more wait for the next batch.
    private let maximumBatch: Int
    /// Runs before each batch; when it throws, every write of the batch fails with its error
    /// and nothing is written (the store refuses writes into a file that was replaced).
    private let beforeBatch: @Sendable () throws -> Void
    /// Runs after each committed batch (the store's checkpointer hears of the commit).
    private let afterBatch: @Sendable () -> Void

    init(
        writer: any DatabaseWriter, maximumBatch: Int = 512, beforeBatch: @escaping @Sendable () throws -> Void = {},
        afterBatch: @escaping @Sendable () -> Void = {}
    ) {
        self.writer = writer
        self.maximumBatch = maximumBatch
        self.beforeBatch = beforeBatch
        self.afterBatch = afterBatch
    }

    /// Runs `body` in a transaction shared with concurrent writes and returns its result once
    /// that transaction is committed. Throws `body`'s error (its changes are rolled back) or the
    /// commit's error.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = Mutex<Result<T, any Error>?>(nil)
            let pending = PendingWrite(
                apply: { db, isolated in
                    guard isolated else {
                        do {
                            let value = try body(db)
                            outcome.withLock { $0 = .success(value) }
                        } catch {
                            outcome.withLock { $0 = .failure(error) }
                            throw WriteFailed()
                        }
                        return
                    }
                    let result: Result<T, any Error>
                    do {
                        var value: T?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        result = .success(value!)
                    } catch {
                        result = .failure(error)
                    }
                    outcome.withLock { $0 = result }
                },
                finish: { commitError in
                    if let commitError {
                        continuation.resume(throwing: commitError)
                    } else if let result = outcome.withLock({ $0 }) {
                        continuation.resume(with: result)
                    } else {
                        continuation.resume(throwing: CancellationError())
                    }
                })
            let startsBatch = state.withLock { state -> Bool in
                state.pending.append(pending)
                guard !state.committing else { return false }
                state.committing = true
                return true
            }
            if startsBatch {
                Task { await self.commitPendingBatches() }
            }
        }
    }

    /// Commits batches until nothing is pending.
    private func commitPendingBatches() async {
        while true {
            let batch = state.withLock { state -> [PendingWrite] in
                let batch = Array(state.pending.prefix(maximumBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.committing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try beforeBatch()
                try await writer.write { db in
                    for write in batch { try write.apply(db, false) }
                }
                afterBatch()
                for write in batch { write.finish(nil) }
            } catch is WriteFailed where batch.count == 1 {
                // Alone in its transaction: the rollback undid exactly this write.
                batch[0].finish(nil)
            } catch is WriteFailed {
                await commitIsolated(batch)
            } catch {
                for write in batch { write.finish(error) }
            }
        }
    }

    /// Runs `batch` again, each write in its own savepoint, and commits what succeeded.
    private func commitIsolated(_ batch: [PendingWrite]) async {
        do {
            try await writer.write { db in
                for write in batch { try write.apply(db, true) }
            }
            afterBatch()
            for write in batch { write.finish(nil) }
        } catch {
            for write in batch { write.finish(error) }
        }
    }
}
