import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// `orch bench dispatch`: `POST /dispatch` requests per second and latency at several numbers
/// of concurrent connections, on the server's default (durable) settings.
struct BenchDispatch: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "dispatch", abstract: "Dispatch requests per second and latency at 1, 16 and 64 connections.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Comma-separated numbers of concurrent connections.") var connections = "1,16,64"
    @Option(help: "Seconds per level.") var duration = 10

    var levels: [Int] {
        connections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
    }
    var connectionsNeeded: Int { levels.max() ?? 1 }

    func validate() throws {
        guard !levels.isEmpty else { throw ValidationError("--connections: e.g. 1,16,64") }
    }

    func measure(_ bench: BenchContext) async throws {
        for level in levels {
            let (requests, seconds, latencies) = try await Self.dispatchLoad(
                connections: level, duration: .seconds(duration), http: bench.http)
            let scenario = "dispatch, \(level) connections"
            bench.report.add(scenario, "throughput", Double(requests) / seconds, "requests/s", target: level == 64 ? ">= 20000" : nil)
            bench.report.addLatencies(scenario, "latency", latencies, p99Target: level == 64 ? "<= 10" : nil)
        }
    }

    /// Each connection loops `POST /dispatch` for `duration`; returns requests, seconds and
    /// every latency in milliseconds.
    static func dispatchLoad(connections: Int, duration: Duration, http: BenchHTTP) async throws -> (Int, Double, [Double]) {
        let latencies = Latencies()
        let started = ContinuousClock.now
        let deadline = started + duration
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<connections {
                group.addTask {
                    var mine: [Double] = []
                    let body = #"{"core_id":"bench-\#(index % 8)","metadata":{"n":\#(index)}}"#
                    while ContinuousClock.now < deadline {
                        let begin = ContinuousClock.now
                        let response = try await http.send(.POST, "/dispatch", body: body)
                        mine.append((ContinuousClock.now - begin).milliseconds)
                        guard response.status == 202 else {
                            throw BenchError("dispatch answered \(response.status): \(String(buffer: response.body))")
                        }
                    }
                    latencies.values.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        let all = latencies.values.withLock { $0 }
        return (all.count, (ContinuousClock.now - started).seconds, all)
    }
}

/// `orch bench batch`: tasks per second through `POST /dispatch/batch`.
struct BenchBatch: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Tasks per second through POST /dispatch/batch.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Tasks per request (1-1000).") var size = 1000
    @Option(help: "Concurrent connections.") var connections = 4
    @Option(help: "Seconds.") var duration = 10

    var connectionsNeeded: Int { connections }

    func measure(_ bench: BenchContext) async throws {
        let body = #"{"tasks":[\#(Array(repeating: #"{"core_id":"bench-batch","metadata":{"n":1}}"#, count: size).joined(separator: ","))]}"#
        let latencies = Latencies()
        let started = ContinuousClock.now
        let deadline = started + .seconds(duration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var mine: [Double] = []
                    while ContinuousClock.now < deadline {
                        let begin = ContinuousClock.now
                        let response = try await bench.http.send(.POST, "/dispatch/batch", body: body, limit: 16 << 20)
                        mine.append((ContinuousClock.now - begin).milliseconds)
                        guard response.status == 202 else {
                            throw BenchError("batch answered \(response.status): \(String(buffer: response.body))")
                        }
                    }
                    latencies.values.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - started).seconds
        let requests = latencies.values.withLock { $0 }
        let scenario = "batch dispatch, \(size) per request, \(connections) connections"
        bench.report.add(scenario, "throughput", Double(requests.count * size) / seconds, "tasks/s", target: ">= 150000")
        bench.report.addLatencies(scenario, "request latency", requests)
    }
}

/// Latencies gathered by concurrent clients.
final class Latencies: Sendable {
    let values = Mutex<[Double]>([])
}
