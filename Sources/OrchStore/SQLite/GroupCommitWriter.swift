import GRDB
import Synchronization

/// Gathers concurrent writes into one transaction, so that N writers pay for one commit and one
/// fsync instead of N.
///
/// A caller submits a closure and suspends. Whenever no batch is being committed, the first
/// pending write starts one: every write that is waiting by then runs in the same transaction,
/// each inside its own savepoint so that one write's error rolls back that write alone and is
/// thrown to its caller only. After the single commit every caller resumes with its own result.
/// Under no concurrency this is exactly one transaction per write; under load the batch grows
/// by itself while the previous commit's fsync is in flight.
final class GroupCommitWriter: Sendable {
    /// A write waiting for its batch.
    private struct PendingWrite: Sendable {
        /// Runs the write in a savepoint and keeps its outcome for `finish`.
        let apply: @Sendable (Database) -> Void
        /// Resumes the caller; the argument is the commit's error, if the commit failed.
        let finish: @Sendable ((any Error)?) -> Void
    }

    private struct State {
        var pending: [PendingWrite] = []
        var committing = false
    }

    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    /// The most writes one transaction gathers; more wait for the next batch.
    private let maximumBatch: Int

    init(writer: any DatabaseWriter, maximumBatch: Int = 512) {
        self.writer = writer
        self.maximumBatch = maximumBatch
    }

    /// Runs `body` in a transaction shared with concurrent writes and returns its result once
    /// that transaction is committed. Throws `body`'s error (its changes are rolled back) or the
    /// commit's error.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = Mutex<Result<T, any Error>?>(nil)
            let pending = PendingWrite(
                apply: { db in
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
                try await writer.write { db in
                    for write in batch { write.apply(db) }
                }
                for write in batch { write.finish(nil) }
            } catch {
                for write in batch { write.finish(error) }
            }
        }
    }
}
