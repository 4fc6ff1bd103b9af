import GRDB
import Synchronization

/// Copies the write-ahead log back into the database file on a connection of its own, so that
/// no write waits for it.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000 pages, on
/// the writer connection: every write of the next group commit waits for those pages to be
/// copied and the database file to be fsynced (`synchronous=FULL`). Under a bulk action, which
/// fills the log fast, that was the longest dispatch stall. The store turns the automatic
/// checkpoint off on its writer and this checkpointer runs a PASSIVE checkpoint (it copies what
/// no reader still needs and never blocks readers or the writer) at most every `interval`
/// while writes are committed. When a checkpoint has copied the whole log, the writer's next
/// transaction starts the log again from its beginning, so the file stays small.
///
/// That restart needs a moment when no reader is in the log. Under steady load (four
/// dispatchers and the pruner for fifteen minutes) the readers overlapped without pause and the
/// log grew to 73 GB, every frame copied and none reusable. So when a passive checkpoint finds
/// the log longer than `restartAbove` frames it follows with a TRUNCATE checkpoint: that one
/// takes the write lock, copies what is left (little, after the passive ones), waits for the
/// readers still in the log (new readers then read the database file only) and empties the
/// file. Its busy handler gives up after a quarter of a second and it is tried again later; the
/// writer waits for it meanwhile, once per `restartAbove` frames of a log that would otherwise
/// never shrink.
final class WALCheckpointer: Sendable {
    private let connection: DatabaseQueue
    private let commits: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>
    /// Checkpoints so far that found a log and copied all of it (tests read it).
    var completeCheckpoints: Int { counter.value.load(ordering: .relaxed) }
    /// TRUNCATE checkpoints that emptied the log (tests read it).
    var truncations: Int { truncated.value.load(ordering: .relaxed) }
    private final class Counter: Sendable { let value = Atomic<Int>(0) }
    private let counter = Counter()
    private let truncated = Counter()

    /// 16,384 frames: 64 MiB of 4 KiB pages.
    init(path: String, interval: Duration = .milliseconds(200), restartAbove: Int = 16_384) throws {
        var configuration = Configuration()
        configuration.label = "orch.checkpoint"
        configuration.busyMode = .timeout(0.25)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        let (stream, commits) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.commits = commits
        let connection = self.connection
        let (counter, truncated) = (self.counter, self.truncated)
        task = Task.detached(priority: .utility) {
            for await _ in stream {
                // A checkpoint that fails (the file went away, another checkpoint was running)
                // is retried at the next commit; the log only grows meanwhile.
                if let result = try? await connection.writeWithoutTransaction({ try $0.checkpoint(.passive) }) {
                    if result.walFrameCount > 0, result.checkpointedFrameCount == result.walFrameCount {
                        counter.value.add(1, ordering: .relaxed)
                    }
                    if result.walFrameCount >= restartAbove,
                        (try? await connection.writeWithoutTransaction({ try $0.checkpoint(.truncate) })) != nil
                    {
                        truncated.value.add(1, ordering: .relaxed)
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    deinit {
        commits.finish()
    }

    /// Called after each commit: a checkpoint follows within `interval`.
    func committed() {
        commits.yield()
    }

    /// Ends the loop and closes the connection (after a checkpoint in progress).
    func stop() async {
        commits.finish()
        task.cancel()
        await task.value
        try? connection.close()
    }
}
