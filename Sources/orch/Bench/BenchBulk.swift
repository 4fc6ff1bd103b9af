import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// `orch bench bulk`: how long a bulk action over a large match holds up dispatches.
///
/// Dispatches `--tasks` queued tasks to one core (in batches of 1,000), then cancels them all
/// with one `POST /tasks/cancel` while `--writers` connections keep dispatching to another
/// core, one request after another. The figure that matters is the longest single dispatch
/// while the cancel runs (the stall: the bulk action is done in short transactions, so no
/// dispatch should wait behind it for long); the same is measured for `POST /tasks/retry`.
struct BenchBulk: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "bulk", abstract: "Dispatch stalls while a bulk cancel and retry change 100,000 tasks.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Tasks the bulk actions change.") var tasks = 100_000
    @Option(help: "Connections dispatching meanwhile.") var writers = 4

    var connectionsNeeded: Int { writers + 4 }

    func measure(_ bench: BenchContext) async throws {
        let batch = #"{"tasks":[\#(Array(repeating: #"{"core_id":"bench-bulk"}"#, count: 1000).joined(separator: ","))]}"#
        var made = 0
        while made < tasks {
            let response = try await bench.http.send(.POST, "/dispatch/batch", body: batch, limit: 64 << 20)
            guard response.status == 202 else { throw BenchError("batch dispatch: \(String(buffer: response.body))") }
            made += 1000
        }
        print("bulk: \(made) tasks queued")
        // The same dispatchers with no bulk action, for comparison.
        let (_, alone) = try await Self.whileDispatching(writers: writers, bench) { try await Task.sleep(for: .seconds(10)) }
        let baseline = "dispatch alone, \(writers) dispatchers, 10 s"
        bench.report.add(baseline, "dispatch p99", Statistics(alone).percentile(0.99), "ms")
        bench.report.add(baseline, "longest dispatch", alone.max() ?? 0, "ms")
        for (action, path) in [("cancel", "/tasks/cancel"), ("retry", "/tasks/retry")] {
            let (elapsed, latencies) = try await Self.whileDispatching(writers: writers, bench) {
                let response = try await bench.http.send(.POST, path, body: #"{"core_id":"bench-bulk"}"#)
                guard response.status == 200 else { throw BenchError("\(path): \(String(buffer: response.body))") }
                print("bulk \(action): \(String(buffer: response.body))")
            }
            let scenario = "bulk \(action) of \(made) tasks, \(writers) dispatchers"
            bench.report.add(scenario, "bulk action", elapsed * 1000, "ms")
            bench.report.add(scenario, "tasks changed per second", Double(made) / elapsed, "tasks/s")
            let statistics = Statistics(latencies)
            bench.report.add(scenario, "dispatches meanwhile", Double(latencies.count), "requests")
            bench.report.add(scenario, "dispatch p50", statistics.percentile(0.5), "ms")
            bench.report.add(scenario, "dispatch p99", statistics.percentile(0.99), "ms")
            bench.report.add(scenario, "longest dispatch (stall)", latencies.max() ?? 0, "ms", target: "<= 100")
        }
    }

    /// Runs `action` while `writers` connections dispatch one request after another; returns
    /// the action's seconds and the latencies (ms) of the dispatches made while it ran.
    static func whileDispatching(writers: Int, _ bench: BenchContext, _ action: @escaping @Sendable () async throws -> Void)
        async throws -> (Double, [Double])
    {
        let running = RunningFlag()
        let begun = ContinuousClock.now
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<writers {
                group.addTask {
                    var latencies: [Double] = []
                    while running.value.load(ordering: .relaxed) {
                        let started = ContinuousClock.now
                        let response = try await bench.http.send(.POST, "/dispatch", body: #"{"core_id":"bench-bulk-side"}"#)
                        guard response.status == 202 else { throw BenchError("dispatch: \(String(buffer: response.body))") }
                        let latency = (ContinuousClock.now - started).milliseconds
                        latencies.append(latency)
                        if latency > 50 {
                            // When the long waits come (from the dispatchers' start), to tell a
                            // stall at the action's start from one during it.
                            print(String(format: "bulk: a dispatch took %.1f ms, %.2f s in", latency, (started - begun).seconds))
                        }
                    }
                    return latencies
                }
            }
            // The dispatchers get going before the action starts.
            try await Task.sleep(for: .milliseconds(500))
            let started = ContinuousClock.now
            try await action()
            let elapsed = (ContinuousClock.now - started).seconds
            running.value.store(false, ordering: .relaxed)
            let latencies = try await group.reduce(into: [Double]()) { $0 += $1 }
            return (elapsed, latencies)
        }
    }

    final class RunningFlag: Sendable {
        let value = Atomic<Bool>(true)
    }
}
