import ArgumentParser
import AsyncHTTPClient
import NIOCore
import OrchStore

/// `orch bench`: measures a server. Without `--url` each benchmark starts its own
/// `orch serve` (this executable; use a release build) on a temporary SQLite file with rate
/// limits off. `orch bench` alone runs every scenario but the large store (`orch bench large`).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure an ORCH-Next server.",
        subcommands: [
            BenchAll.self, BenchDispatch.self, BenchBatch.self, BenchEndToEnd.self, BenchLocks.self, BenchSSE.self,
            BenchMemory.self, BenchLarge.self, BenchCluster.self, BenchBulk.self, BenchRetention.self,
        ],
        defaultSubcommand: BenchAll.self)
}

/// A benchmark that can run alone (its own command) or as part of `orch bench all`.
protocol BenchScenario: AsyncParsableCommand {
    var target: BenchTarget { get }
    /// Connections the scenario's HTTP client needs.
    var connectionsNeeded: Int { get }
    func measure(_ bench: BenchContext) async throws
}

extension BenchScenario {
    func run() async throws {
        try await target.withContext(connections: connectionsNeeded) { bench in try await measure(bench) }
    }
}

/// What a scenario measures against: the server, an HTTP client with an admin session, and
/// the report its figures go to.
struct BenchContext: Sendable {
    let server: BenchServer
    let client: HTTPClient
    let http: BenchHTTP
    let report: BenchReport
}

/// Options every benchmark shares.
struct BenchTarget: ParsableArguments {
    @Option(
        help: """
            Server to measure (several nodes of one database: URLs separated by commas, requests spread round-robin); \
            default: start a fresh `orch serve` on a temporary database.
            """)
    var url: String?
    @Option(help: "Admin username for --url.") var username = "admin"
    @Option(help: "Admin password for --url (ORCH_PASSWORD).") var password: String?
    @Option(help: "Also write the figures as JSON to this file.") var json: String?
    @Option(
        help: """
            Database of the servers the bench starts: a PostgreSQL server URL (postgres://USER:PASSWORD@HOST:PORT/DB, \
            a role with CREATEDB), on which each started server gets a fresh database, dropped afterwards. Default: \
            a temporary SQLite file. With PostgreSQL, `orch bench all` also runs pgbench (when installed) on the \
            same server for comparison.
            """)
    var databaseURL: String?

    /// The PostgreSQL server of `--database-url`, if one was given.
    func postgresServer() throws -> PostgresURL? {
        guard let databaseURL else { return nil }
        guard case .postgres(let url)? = DatabaseURL(databaseURL) else {
            throw ValidationError("--database-url must be a postgres:// URL (SQLite is the default)")
        }
        return url
    }
}

extension BenchTarget {
    /// Runs `body` against the server to measure (started here unless `--url`, on the database
    /// `databasePath` when given) with a client of `connections` connections, then prints the
    /// table, writes the JSON and stops what it started.
    /// `report` collects the figures (several servers can share one; `finish: false` leaves
    /// the table and the JSON to a later call).
    func withContext(
        connections: Int, databasePath: String? = nil, nodes: Int = 1, report: BenchReport = BenchReport(),
        finish: Bool = true,
        _ body: (BenchContext) async throws -> Void
    ) async throws {
        let server: BenchServer
        if let url {
            server = BenchServer(url: url)
        } else {
            server = try await BenchServer.start(databasePath: databasePath, postgres: try postgresServer(), nodes: nodes)
        }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections + 8
        configuration.timeout.read = .hours(1)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let token = try await BenchHTTP(client: client, baseURLs: [server.baseURL]).login(self)
            let http = BenchHTTP(client: client, baseURLs: server.baseURLs, token: token)
            try await body(BenchContext(server: server, client: client, http: http, report: report))
        } catch {
            await server.stop()
            try? await client.shutdown()
            throw error
        }
        await server.stop()
        try await client.shutdown()
        guard finish else { return }
        report.printTable()
        if let json { try report.writeJSON(to: json) }
    }
}

/// `orch bench all` (the default): every scenario but the large store. Memory (idle, then
/// holding 10,000 idle streams) on a fresh server of its own, then the others one after
/// another on a second fresh server.
struct BenchAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all", abstract: "Every scenario except the large store (see `orch bench large`).")

    @OptionGroup var target: BenchTarget
    @Option(help: "Seconds per measured step.") var duration = 8

    func run() async throws {
        let seconds = ["--duration", String(duration)]
        let memory = try BenchMemory.parse([])
        let dispatch = try BenchDispatch.parse(seconds)
        let batch = try BenchBatch.parse(seconds)
        let endToEnd = try BenchEndToEnd.parse(seconds)
        let locks = try BenchLocks.parse(seconds)
        let sse = try BenchSSE.parse(seconds)
        let needed = [dispatch.connectionsNeeded, batch.connectionsNeeded, endToEnd.connectionsNeeded,
            locks.connectionsNeeded, sse.connectionsNeeded].max()!
        let report = BenchReport()
        if let postgres = try target.postgresServer() {
            try await PgbenchBaseline(seconds: duration).measure(on: postgres, report: report)
        }
        if target.url == nil {
            // Memory on a server of its own: idle, then holding the idle streams (whose
            // teardown would disturb the next scenario).
            try await target.withContext(connections: memory.connectionsNeeded, report: report, finish: false) { bench in
                try await memory.measure(bench)
            }
        } else {
            print("memory: skipped (needs a server started by the bench)")
        }
        try await target.withContext(connections: needed, report: report) { bench in
            try await dispatch.measure(bench)
            try await batch.measure(bench)
            try await endToEnd.measure(bench)
            try await locks.measure(bench)
            try await sse.measure(bench)
        }
    }
}
