import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// `orch bench dispatch`: `POST /dispatch` requests per second and latency at several numbers
/// of concurrent connections, on the server's default (durable) settings.
///
/// The load comes from `wrk` when it is installed (`--load-generator auto`, the default): it
/// is the lighter client, so more of the two cores the client and server share go to the
/// server. `--load-generator swift` uses this process's HTTP client instead.
struct BenchDispatch: BenchScenario {
    enum LoadGenerator: String, ExpressibleByArgument, CaseIterable {
        case auto, wrk, swift
    }

    static let configuration = CommandConfiguration(
        commandName: "dispatch", abstract: "Dispatch requests per second and latency at 1, 16 and 64 connections.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Comma-separated numbers of concurrent connections.") var connections = "1,16,64"
    @Option(help: "Seconds per level.") var duration = 10
    @Option(help: "auto (wrk when installed), wrk or swift.") var loadGenerator = LoadGenerator.auto

    var levels: [Int] {
        connections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
    }
    var connectionsNeeded: Int { levels.max() ?? 1 }

    func validate() throws {
        guard !levels.isEmpty else { throw ValidationError("--connections: e.g. 1,16,64") }
    }

    func measure(_ bench: BenchContext) async throws {
        let wrk = loadGenerator == .swift ? nil : WrkRunner.find()
        if loadGenerator == .wrk && wrk == nil { throw BenchError("wrk is not installed (apt-get install wrk)") }
        for level in levels {
            let scenario = "dispatch, \(level) connections" + (wrk == nil ? "" : " (wrk)")
            let figures = try await Self.figures(connections: level, seconds: duration, wrk: wrk, bench)
            bench.report.add(scenario, "throughput", figures.requestsPerSecond, "requests/s", target: level == 64 ? ">= 20000" : nil)
            bench.report.add(scenario, "latency p50", figures.p50, "ms")
            bench.report.add(scenario, "latency p99", figures.p99, "ms", target: level == 64 ? "<= 10" : nil)
            bench.report.add(scenario, "latency p999", figures.p999, "ms")
        }
    }

    /// `POST /dispatch` from `connections` connections for `seconds`, through `wrk` when given.
    static func figures(connections: Int, seconds: Int, wrk: WrkRunner?, _ bench: BenchContext) async throws
        -> WrkRunner.Figures
    {
        if let wrk {
            // One wrk per node, the connections shared among them, all at once.
            let urls = bench.server.baseURLs
            let runs = try await withThrowingTaskGroup(of: WrkRunner.Figures.self) { group in
                for (index, url) in urls.enumerated() {
                    let share = connections / urls.count + (index < connections % urls.count ? 1 : 0)
                    guard share > 0 else { continue }
                    group.addTask {
                        try await wrk.runOffThePool(
                            url: url + "/dispatch", token: bench.http.token ?? "", connections: share, seconds: seconds,
                            body: #"{"core_id":"bench-wrk","metadata":{"n":1}}"#)
                    }
                }
                return try await group.reduce(into: [WrkRunner.Figures]()) { $0.append($1) }
            }
            // Throughputs add up; for latencies the slowest node's figure stands.
            return WrkRunner.Figures(
                requestsPerSecond: runs.map(\.requestsPerSecond).reduce(0, +), p50: runs.map(\.p50).max() ?? 0,
                p99: runs.map(\.p99).max() ?? 0, p999: runs.map(\.p999).max() ?? 0)
        }
        let (requests, elapsed, latencies) = try await dispatchLoad(
            connections: connections, duration: .seconds(seconds), http: bench.http)
        let statistics = Statistics(latencies)
        return WrkRunner.Figures(
            requestsPerSecond: Double(requests) / elapsed, p50: statistics.percentile(0.5),
            p99: statistics.percentile(0.99), p999: statistics.percentile(0.999))
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

/// Runs `wrk` (a C load generator) with a script that posts one JSON body and reports the
/// figures through its `done` hook.
struct WrkRunner {
    struct Figures {
        var requestsPerSecond: Double
        var p50: Double
        var p99: Double
        var p999: Double
    }

    let path: String

    /// `wrk` on the PATH, if any.
    static func find() -> WrkRunner? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        return paths.map { "\($0)/wrk" }.first { FileManager.default.isExecutableFile(atPath: $0) }.map(WrkRunner.init)
    }

    /// ``run(url:token:connections:seconds:body:)`` on a thread of its own (it blocks until wrk ends).
    func runOffThePool(url: String, token: String, connections: Int, seconds: Int, body: String) async throws -> Figures {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try run(url: url, token: token, connections: connections, seconds: seconds, body: body) })
            }
        }
    }

    func run(url: String, token: String, connections: Int, seconds: Int, body: String) throws -> Figures {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("orch-bench-\(UUID().uuidString).lua")
        defer { try? FileManager.default.removeItem(at: script) }
        try """
            wrk.method = "POST"
            wrk.body = '\(body)'
            wrk.headers["Content-Type"] = "application/json"
            wrk.headers["Authorization"] = "Bearer \(token)"
            done = function(summary, latency, requests)
              io.write(string.format("ORCH %d %d %d %f %f %f\\n", summary.requests, summary.duration,
                summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
                latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
            end
            """.write(to: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = [
            "-t", String(min(2, connections)), "-c", String(connections), "-d", "\(seconds)s", "-s", script.path, url,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ORCH ") }) else {
            throw BenchError("wrk printed no figures: \(text)")
        }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count == 6 else { throw BenchError("wrk figures unreadable: \(line)") }
        guard fields[2] == 0 else { throw BenchError("wrk saw \(Int(fields[2])) failed requests: \(text)") }
        return Figures(requestsPerSecond: fields[0] / (fields[1] / 1e6), p50: fields[3], p99: fields[4], p999: fields[5])
    }
}

/// Latencies gathered by concurrent clients.
final class Latencies: Sendable {
    let values = Mutex<[Double]>([])
}
