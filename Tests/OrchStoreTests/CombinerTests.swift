import Synchronization
import Testing

@testable import OrchStore

@Suite struct CombinerTests {
    /// Counts what the write of a combiner sees: batches, and how many run at once.
    final class Probe: Sendable {
        let batches = Mutex<[[Int]]>([])
        let inFlight = Mutex((now: 0, most: 0))

        func write(_ batch: [Int]) async throws -> [Result<Int, any Error>] {
            inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            defer { inFlight.withLock { $0.now -= 1 } }
            batches.withLock { $0.append(batch) }
            try await Task.sleep(for: .milliseconds(20))
            return batch.map { $0 % 7 == 3 ? .failure(Odd(value: $0)) : .success($0 * 10) }
        }
    }

    struct Odd: Error, Equatable { var value: Int }

    final class Counter: Sendable {
        private let count = Mutex(0)

        func next() -> Int {
            count.withLock { count in
                count += 1
                return count
            }
        }
    }

    @Test func concurrentCallsAreWrittenInFewBatchesAndEachGetsItsOwnResult() async throws {
        let combiner = Combiner<Int, Int>(concurrency: 2, maximumBatch: 16)
        let probe = Probe()
        let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            for value in 0..<100 {
                group.addTask {
                    do {
                        return (value, .success(try await combiner.run(value) { try await probe.write($0) }))
                    } catch {
                        return (value, .failure(error))
                    }
                }
            }
            return await group.reduce(into: [(Int, Result<Int, any Error>)]()) { $0.append($1) }
        }
        #expect(results.count == 100)
        for (value, result) in results {
            switch result {
            case .success(let output): #expect(value % 7 != 3 && output == value * 10)
            case .failure(let error): #expect(value % 7 == 3 && (error as? Odd) == Odd(value: value))
            }
        }
        let batches = probe.batches.withLock { $0 }
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<100))
        #expect(batches.count < 50 && batches.allSatisfy { $0.count <= 16 })
        #expect(probe.inFlight.withLock { $0.most } <= 2)
    }

    @Test func aThrowingWriteFailsEveryCallOfItsBatchAndTheNextBatchesStillRun() async throws {
        let combiner = Combiner<Int, Int>(concurrency: 1, maximumBatch: 4)
        struct Down: Error {}
        let calls = Counter()
        let results = await withTaskGroup(of: Bool.self) { group in
            for value in 0..<12 {
                group.addTask {
                    do {
                        _ = try await combiner.run(value) { batch in
                            let first = calls.next() == 1
                            try await Task.sleep(for: .milliseconds(10))
                            if first { throw Down() }
                            return batch.map { .success($0) }
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let failures = results.filter { !$0 }.count
        #expect(failures >= 1 && failures <= 4)
        #expect(results.filter { $0 }.count == 12 - failures)
    }

    @Test func aLoneCallIsWrittenAtOnce() async throws {
        let combiner = Combiner<Int, Int>(concurrency: 1, maximumBatch: 8)
        let probe = Probe()
        for value in [1, 2, 4] {
            #expect(try await combiner.run(value) { try await probe.write($0) } == value * 10)
        }
        #expect(probe.batches.withLock { $0 } == [[1], [2], [4]])
    }
}
