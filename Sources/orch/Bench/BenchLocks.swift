import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OrchModels
import Synchronization

/// `orch bench locks`: acquire+release pairs per second, uncontended (each client its own
/// resources) and contended (every client on one resource, waiting with `timeout`).
struct BenchLocks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locks", abstract: "Lock acquire+release pairs per second, uncontended and contended.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Clients on distinct resources.") var clients = 64
    @Option(help: "Clients on one contended resource.") var contendedClients = 16
    @Option(help: "Seconds per scenario.") var duration = 10

    func run() async throws {
        let (server, client, http) = try await target.connect(connections: max(clients, contendedClients))
        defer {
            server.stop()
            _ = client.shutdown()
        }

        let distinct = try await measure(clients: clients, http: http) { index, round in
            ("bench-\(index)-\(round % 8)", 0)
        }
        report("uncontended", clients: clients, result: distinct)
        let contended = try await measure(clients: contendedClients, http: http) { _, _ in ("bench-contended", 30) }
        report("contended (1 resource)", clients: contendedClients, result: contended)
    }

    final class Tally: Sendable {
        let pairs = Atomic<Int>(0)
        let waits = Mutex<[Double]>([])
    }

    struct Result {
        var pairs: Int
        var seconds: Double
        var waits: [Double]
    }

    /// Each client loops acquire (resource and timeout from `choose`) then release.
    func measure(clients: Int, http: BenchHTTP, choose: @escaping @Sendable (Int, Int) -> (String, Int)) async throws
        -> Result
    {
        let tally = Tally()
        let started = ContinuousClock.now
        let deadline = started + .seconds(duration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<clients {
                group.addTask {
                    var round = 0
                    var mine: [Double] = []
                    while ContinuousClock.now < deadline {
                        let (resource, timeout) = choose(index, round)
                        let owner = "owner-\(index)"
                        let begin = ContinuousClock.now
                        let acquired = try await http.send(
                            .POST, "/locks", body: #"{"resource":"\#(resource)","owner":"\#(owner)","ttl":30,"timeout":\#(timeout)}"#)
                        mine.append((ContinuousClock.now - begin).milliseconds)
                        guard acquired.status == 200 else { throw BenchError("acquire answered \(acquired.status)") }
                        let released = try await http.send(.DELETE, "/locks/\(resource)?owner=\(owner)")
                        guard released.status == 200 else { throw BenchError("release answered \(released.status)") }
                        tally.pairs.add(1, ordering: .relaxed)
                        round += 1
                    }
                    tally.waits.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        return Result(
            pairs: tally.pairs.load(ordering: .relaxed), seconds: (ContinuousClock.now - started).seconds,
            waits: tally.waits.withLock { $0 })
    }

    func report(_ name: String, clients: Int, result: Result) {
        let statistics = Statistics(result.waits)
        print(
            "locks \(name): \(clients) clients, \(format(Double(result.pairs) / result.seconds, decimals: 0)) acquire+release pairs/s;"
                + " acquire latency ms p50 \(format(statistics.percentile(0.5))) p99 \(format(statistics.percentile(0.99)))")
    }
}

/// Small JSON-over-HTTP helper for the benchmarks.
struct BenchHTTP: Sendable {
    let client: HTTPClient
    let baseURL: String
    var token: String? = nil

    func send(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> (status: Int, body: ByteBuffer) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        return (Int(response.status.code), try await response.body.collect(upTo: 1 << 20))
    }

    func login(_ target: BenchTarget) async throws -> String {
        let password = target.password ?? ProcessInfo.processInfo.environment["ORCH_PASSWORD"] ?? BenchServer.adminPassword
        let body = String(decoding: try JSONEncoder().encode(LoginRequest(username: target.username, password: password)), as: UTF8.self)
        let response = try await send(.POST, "/auth/login", body: body)
        guard response.status == 200 else { throw BenchError("login failed: \(String(buffer: response.body))") }
        return try Timestamp.makeDecoder().decode(LoginResponse.self, from: Data(buffer: response.body)).accessToken
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}
