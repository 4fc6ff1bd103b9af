import Logging
import PostgresNIO
import Synchronization

/// Keeps the planner's statistics of the task tables up to date while they grow.
///
/// The hot statements are prepared once per connection and run on a generic plan, which
/// PostgreSQL makes from the statistics of the moment and keeps until they change. A new
/// database has none: its first plans come from an empty table, and there index choices are a
/// coin toss (measured here: a plan that read a core's whole queue for every dispatch, which
/// fell from 2,500 to under 300 dispatches a second as the queue grew, while autovacuum's first
/// `ANALYZE` was still a minute away). So the store analyses the task tables itself each time
/// the tasks it inserted have doubled, from 1,000 on; new statistics make every connection plan
/// its statements again. Past a few doublings this is rare, and autovacuum's own analyses take
/// over.
final class PostgresStatistics: Sendable {
    private let inserted = Atomic<Int>(0)
    private let nextAnalysis = Atomic<Int>(1_000)
    private let requests: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (requests, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Counts `count` inserted tasks; asks for an analysis when they have doubled.
    func inserted(_ count: Int) {
        let total = inserted.add(count, ordering: .relaxed).newValue
        let next = nextAnalysis.load(ordering: .relaxed)
        guard total >= next,
            nextAnalysis.compareExchange(expected: next, desired: total * 2, ordering: .relaxed).exchanged
        else { return }
        continuation.yield()
    }

    /// Runs the analyses asked for, until cancelled.
    func run(_ client: PostgresClient, logger: Logger) async {
        for await _ in requests {
            do {
                _ = try await client.query("ANALYZE tasks, task_counts, events", logger: logger).collect()
            } catch {
                logger.debug("analyze failed", metadata: ["error": "\(String(describing: error))"])
            }
        }
    }
}
