import ArgumentParser
import Foundation
import NIOCore
import NIOFoundationCompat
import OrchModels
import Synchronization

/// `orch bench e2e`: tasks per second from dispatch to completed, with workers claiming
/// several tasks at a time and completing each (no-op tasks), and the time from a task's
/// creation to its claim.
///
/// One producer keeps the queue fed through `POST /dispatch/batch` (about `--backlog` tasks
/// waiting, by default one claim round: workers x max-tasks); each worker loops `POST /cores/{core}/claim` with `max_tasks` and `wait`, then
/// completes its tasks concurrently with `PUT /jobs/{id}/status`, as `orch worker` does.
struct BenchEndToEnd: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "e2e", abstract: "Tasks per second from dispatch to completed, and dispatch-to-start latency.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Workers claiming.") var workers = 8
    @Option(help: "max_tasks per claim.") var maxTasks = 32
    @Option(help: "Most tasks dispatched but not yet completed (default: workers x max-tasks).") var backlog: Int?
    @Option(help: "Seconds.") var duration = 10

    var connectionsNeeded: Int { workers * maxTasks + 4 }

    final class Tally: Sendable {
        let dispatched = Atomic<Int>(0)
        let completed = Atomic<Int>(0)
        let startDelays = Mutex<[Double]>([])
    }

    func measure(_ bench: BenchContext) async throws {
        let (completed, seconds, delays) = try await run(bench)
        let scenario = "end to end, \(workers) workers x \(maxTasks) tasks per claim"
        bench.report.add(scenario, "completed", Double(completed) / seconds, "tasks/s", target: ">= 10000")
        bench.report.addLatencies(scenario, "dispatch to start", delays)
    }

    /// Runs the load; returns the tasks completed, the seconds it took and each task's
    /// creation-to-claim delay in milliseconds.
    func run(_ bench: BenchContext) async throws -> (completed: Int, seconds: Double, delays: [Double]) {
        let core = "bench-e2e-\(UInt32.random(in: 0...UInt32.max))"
        let tally = Tally()
        let http = bench.http
        // At most one claim round waits by default, so creation-to-claim shows the scheduling
        // delay rather than a queue the bench itself keeps long.
        let backlog = self.backlog ?? workers * maxTasks
        let perBatch = max(1, min(500, backlog / 2))
        let batch = #"{"tasks":[\#(Array(repeating: #"{"core_id":"\#(core)"}"#, count: perBatch).joined(separator: ","))]}"#
        let started = ContinuousClock.now
        let deadline = started + .seconds(duration)
        var counted = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while ContinuousClock.now < deadline {
                    let waiting = tally.dispatched.load(ordering: .relaxed) - tally.completed.load(ordering: .relaxed)
                    guard waiting < backlog else {
                        try await Task.sleep(for: .milliseconds(1))
                        continue
                    }
                    let response = try await http.send(.POST, "/dispatch/batch", body: batch, limit: 16 << 20)
                    guard response.status == 202 else { throw BenchError("batch answered \(response.status)") }
                    tally.dispatched.add(perBatch, ordering: .relaxed)
                }
            }
            for index in 0..<workers {
                group.addTask {
                    let claim = #"{"worker_id":"bench-worker-\#(index)","max_tasks":\#(maxTasks),"wait":1}"#
                    var delays: [Double] = []
                    defer { tally.startDelays.withLock { $0 += delays } }
                    while ContinuousClock.now < deadline {
                        let response = try await http.send(.POST, "/cores/\(core)/claim", body: claim)
                        let now = Date()
                        guard response.status == 200 else { throw BenchError("claim answered \(response.status)") }
                        let claimed = try Timestamp.makeDecoder().decode(ClaimResponse.self, from: Data(buffer: response.body))
                        delays += claimed.tasks.map { now.timeIntervalSince($0.task.createdAt) * 1000 }
                        try await withThrowingTaskGroup(of: Void.self) { completions in
                            for task in claimed.tasks {
                                completions.addTask {
                                    let done = try await http.send(
                                        .PUT, "/jobs/\(task.task.taskID)/status",
                                        body: #"{"status":"completed","lease_token":"\#(task.leaseToken)","result":{"ok":true}}"#)
                                    guard done.status == 200 else { throw BenchError("complete answered \(done.status)") }
                                    tally.completed.add(1, ordering: .relaxed)
                                }
                            }
                            try await completions.waitForAll()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        counted = tally.completed.load(ordering: .relaxed)
        return (counted, (ContinuousClock.now - started).seconds, tally.startDelays.withLock { $0 })
    }
}
