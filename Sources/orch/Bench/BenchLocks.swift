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
///
/// On the contended resource the clients also check mutual exclusion: a client marks the
/// resource as its own after its acquire returns and unmarks it before sending its release,
/// so two holders at once would be seen; fencing tokens must rise with every hand-off.
struct BenchLocks: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "locks", abstract: "Lock acquire+release pairs per second, uncontended and contended.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Clients on distinct resources.") var clients = 64
    @Option(help: "Clients on one contended resource.") var contendedClients = 16
    @Option(help: "Seconds per scenario.") var duration = 10

    var connectionsNeeded: Int { max(clients, contendedClients) }

    func measure(_ bench: BenchContext) async throws {
        let distinct = try await measure(clients: clients, http: bench.http) { index, round in
            ("bench-\(index)-\(round % 8)", 0)
        }
        let scenario = "locks, distinct resources, \(clients) clients"
        bench.report.add(scenario, "throughput", Double(distinct.pairs) / distinct.seconds, "pairs/s", target: ">= 15000")
        bench.report.addLatencies(scenario, "acquire", distinct.waits)

        let contended = try await measure(clients: contendedClients, http: bench.http) { _, _ in ("bench-contended", 30) }
        let one = "locks, one resource, \(contendedClients) clients"
        bench.report.add(one, "hand-offs", Double(contended.pairs) / contended.seconds, "hand-offs/s", target: ">= 3000")
        bench.report.addLatencies(one, "wait", contended.waits)
        bench.report.add(one, "overlaps seen", Double(contended.overlaps), "holders at once", target: "0")
    }

    final class Tally: Sendable {
        let pairs = Atomic<Int>(0)
        let waits = Mutex<[Double]>([])
        /// The owner index holding each resource, as the clients saw it (contended check).
        let holders = Mutex<[String: Int]>([:])
        /// The last fencing token granted per resource.
        let fencing = Mutex<[String: Int64]>([:])
        let overlaps = Atomic<Int>(0)
    }

    struct Result {
        var pairs: Int
        var seconds: Double
        var waits: [Double]
        var overlaps: Int
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
                        let grant = try Timestamp.makeDecoder().decode(LockGrant.self, from: Data(buffer: acquired.body))
                        let clash = tally.holders.withLock { holders in
                            defer { holders[resource] = index }
                            return holders[resource] != nil
                        }
                        let stale = tally.fencing.withLock { fencing in
                            defer { fencing[resource] = grant.fencingToken ?? 0 }
                            return (grant.fencingToken ?? 0) <= (fencing[resource] ?? -1)
                        }
                        if clash || stale { tally.overlaps.add(1, ordering: .relaxed) }
                        tally.holders.withLock { $0[resource] = nil }
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
            waits: tally.waits.withLock { $0 }, overlaps: tally.overlaps.load(ordering: .relaxed))
    }
}

/// Small JSON-over-HTTP helper for the benchmarks.
struct BenchHTTP: Sendable {
    let client: HTTPClient
    /// Every node's base URL; requests go to them in turn.
    let baseURLs: [String]
    var token: String? = nil
    private let turn = Turn()

    init(client: HTTPClient, baseURLs: [String], token: String? = nil) {
        self.client = client
        self.baseURLs = baseURLs
        self.token = token
    }

    /// Hands out the next node.
    final class Turn: Sendable {
        private let next = Atomic<Int>(0)
        func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
    }

    func send(_ method: HTTPMethod, _ path: String, body: String? = nil, limit: Int = 1 << 20) async throws
        -> (status: Int, body: ByteBuffer)
    {
        let base = baseURLs.count == 1 ? baseURLs[0] : baseURLs[turn.take() % baseURLs.count]
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        return (Int(response.status.code), try await response.body.collect(upTo: limit))
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
