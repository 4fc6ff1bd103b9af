import DequeModule
import Synchronization

/// Combines concurrent calls of one operation into batches: a call that arrives while
/// `concurrency` batches are already being written waits, and the next batch takes every call
/// waiting by then (at most `maximumBatch`), written by one `write` of all of them.
///
/// No task is started for this: a caller that finds a free slot writes its own batch, and when
/// it has, it hands the slot to the first waiting caller, whose batch it assembles (that caller
/// then writes it). So under no concurrency every call is written alone at once, and under load
/// the batches grow by themselves while earlier ones are in flight.
///
/// `write` returns one result per input, in order; an error it throws is every input's error.
/// Every caller passes the same `write`: the caller that writes a batch uses its own.
final class Combiner<Input: Sendable, Output: Sendable>: Sendable {
    typealias Write = @Sendable ([Input]) async throws -> [Result<Output, any Error>]

    /// What a waiting caller is resumed with: its result, or a batch (itself first) to write.
    private enum Turn: Sendable {
        case done(Result<Output, any Error>)
        case write([Waiter])
    }

    private struct Waiter: Sendable {
        var input: Input
        var resume: @Sendable (Turn) -> Void
    }

    private struct State {
        var waiting: Deque<Waiter> = []
        var writing = 0
    }

    private let state = Mutex(State())
    private let concurrency: Int
    private let maximumBatch: Int

    init(concurrency: Int, maximumBatch: Int) {
        self.concurrency = max(1, concurrency)
        self.maximumBatch = max(1, maximumBatch)
    }

    func run(_ input: Input, write: Write) async throws -> Output {
        let mayWrite = state.withLock { state -> Bool in
            guard state.writing < concurrency else { return false }
            state.writing += 1
            return true
        }
        if mayWrite { return try await writeFirst([Waiter(input: input) { _ in }], write) }
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let me = Waiter(input: input) { continuation.resume(returning: $0) }
            // A slot may have come free since the check above: then this call writes at once.
            let startsNow = state.withLock { state -> Bool in
                guard state.writing < concurrency else {
                    state.waiting.append(me)
                    return false
                }
                state.writing += 1
                return true
            }
            if startsNow { continuation.resume(returning: .write([me])) }
        }
        switch turn {
        case .done(let result):
            return try result.get()
        case .write(let batch):
            return try await writeFirst(batch, write)
        }
    }

    /// Writes `batch`, whose first waiter is the calling one, and returns that one's result
    /// (its own `resume` may already be spent, so the result is caught here instead).
    private func writeFirst(_ batch: [Waiter], _ write: Write) async throws -> Output {
        let own = Mutex<Result<Output, any Error>?>(nil)
        var batch = batch
        batch[0].resume = { turn in
            if case .done(let result) = turn { own.withLock { $0 = result } }
        }
        await writeAndHandOver(batch, write)
        guard let result = own.withLock({ $0 }) else { throw CancellationError() }
        return try result.get()
    }

    /// Writes `batch`, answers its callers, then hands the slot to the next waiting batch or
    /// frees it.
    private func writeAndHandOver(_ batch: [Waiter], _ write: Write) async {
        let results: [Result<Output, any Error>]
        do {
            results = try await write(batch.map(\.input))
        } catch {
            results = Array(repeating: .failure(error), count: batch.count)
        }
        for (waiter, result) in zip(batch, results) { waiter.resume(.done(result)) }
        let next = state.withLock { state -> [Waiter] in
            let next = Array(state.waiting.prefix(maximumBatch))
            state.waiting.removeFirst(next.count)
            if next.isEmpty { state.writing -= 1 }
            return next
        }
        if let first = next.first { first.resume(.write(next)) }
    }
}
