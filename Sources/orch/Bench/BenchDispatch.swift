import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// `orch bench dispatch`: `POST /dispatch` requests per second and latency at several numbers
/// of concurrent connections, on the server's default (durable) settings.
struct BenchDispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch", abstract: "Dispatch requests per second and latency at 1, 16 and 64 connections.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Comma-separated numbers of concurrent connections.") var connections = "1,16,64"
    @Option(help: "Seconds per level.") var duration = 10

    func run() async throws {
        let levels = connections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !levels.isEmpty, levels.allSatisfy({ $0 > 0 }) else { throw ValidationError("--connections: e.g. 1,16,64") }
        let (server, client, http) = try await target.connect(connections: levels.max()!)
        defer {
            server.stop()
            _ = client.shutdown()
        }
        for level in levels {
            let (requests, seconds, latencies) = try await measure(connections: level, http: http)
            let statistics = Statistics(latencies)
            print(
                "dispatch: \(level) connections, \(format(Double(requests) / seconds, decimals: 0)) requests/s;"
                    + " latency ms p50 \(format(statistics.percentile(0.5), decimals: 2))"
                    + " p99 \(format(statistics.percentile(0.99), decimals: 2))"
                    + " p999 \(format(statistics.percentile(0.999), decimals: 2))")
        }
    }

    /// Each connection loops dispatches for `duration` seconds; returns requests, seconds and
    /// every latency in milliseconds.
    func measure(connections: Int, http: BenchHTTP) async throws -> (Int, Double, [Double]) {
        let latencies = Latencies()
        let started = ContinuousClock.now
        let deadline = started + .seconds(duration)
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

/// Latencies gathered by concurrent clients.
final class Latencies: Sendable {
    let values = Mutex<[Double]>([])
}
