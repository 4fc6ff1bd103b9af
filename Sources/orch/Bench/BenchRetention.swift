import ArgumentParser
import AsyncHTTPClient
import Foundation
import OrchCore
import OrchModels
import OrchServer
import OrchStore

/// `orch bench retention`: dispatch latency while the pruner deletes a large backlog.
///
/// Writes `--tasks` completed tasks finished two days ago (each with its `task.created` event)
/// straight into a fresh database through the store (on PostgreSQL then `VACUUM (ANALYZE)` and a
/// checkpoint, so the load's aftermath is not measured), then measures `--writers` connections
/// dispatching one request after another for 10 s on a server that keeps everything
/// (`ORCH_RETENTION` all 0), stops it, and measures the same on a server on the same database
/// with `completed=1d` and a pass every second, from its start until `orch_tasks_pruned_total`
/// reaches `--tasks`. The figure that matters: dispatch p99 while pruning against p99 without
/// (target: at most twice).
struct BenchRetention: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Dispatch latency while retention prunes 1,000,000 finished tasks.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Finished tasks to prune.") var tasks = 1_000_000
    @Option(help: "Connections dispatching meanwhile.") var writers = 4

    func run() async throws {
        let report = BenchReport()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databaseURL: String
        var dropDatabase: (() async -> Void)?
        if let postgres = try target.postgresServer() {
            let name = "orch_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            databaseURL = try await PostgresAdmin.createDatabase(name, on: postgres).connectionString
            dropDatabase = { try? await PostgresAdmin.dropDatabase(name, on: postgres) }
        } else {
            databaseURL = "sqlite://" + directory.appendingPathComponent("retention.sqlite").path
        }
        do {
            try await populate(databaseURL)
            let keepAll = ["ORCH_RETENTION": "completed=0,failed=0,cancelled=0,events=0"]
            let baseline = try await measure(databaseURL, keepAll) { _ in try await Task.sleep(for: .seconds(10)) }
            let scenario = "\(writers) dispatchers"
            report.add(scenario, "dispatch p99 without pruning", Statistics(baseline.latencies).percentile(0.99), "ms")
            let pruning = try await measure(databaseURL, ["ORCH_RETENTION": "completed=1d", "ORCH_RETENTION_INTERVAL": "1"]) {
                http in try await waitForPruned(http)
            }
            let baselineP99 = Statistics(baseline.latencies).percentile(0.99)
            let pruningP99 = Statistics(pruning.latencies).percentile(0.99)
            report.add(scenario, "pruning \(tasks) tasks (from server start)", pruning.seconds, "s")
            report.add(scenario, "tasks pruned per second", Double(tasks) / pruning.seconds, "tasks/s")
            report.add(scenario, "dispatch p99 while pruning", pruningP99, "ms")
            report.add(scenario, "longest dispatch while pruning", pruning.latencies.max() ?? 0, "ms")
            report.add(scenario, "p99 while pruning / p99 without", pruningP99 / max(baselineP99, 0.001), "x", target: "<= 2")
        } catch {
            await dropDatabase?()
            throw error
        }
        await dropDatabase?()
        report.printTable()
        if let json = target.json { try report.writeJSON(to: json) }
    }

    /// The completed tasks, two days old, in transactions of 1,000.
    func populate(_ databaseURL: String) async throws {
        guard let url = DatabaseURL(databaseURL) else { throw BenchError("bad database URL") }
        let store = try await openStore(url)
        let finished = Date().addingTimeInterval(-2 * 86_400)
        var made = 0
        while made < tasks {
            let transitions = (0..<min(1000, tasks - made)).map { _ in
                var transition = TaskLifecycle.dispatch(
                    DispatchRequest(coreID: "bench-retention"), id: Identifier.make("task"), createdBy: "bench", now: finished)
                transition.task.status = .completed
                transition.task.completedAt = finished
                transition.task.updatedAt = finished
                return transition
            }
            _ = try await store.insertTasks(transitions, activeSince: finished)
            made += transitions.count
        }
        try await store.close()
        if case .postgres(let postgres) = url { try await PostgresAdmin.settle(postgres) }
        print("retention: \(made) completed tasks written")
    }

    /// Starts a server on the database with `environment`, dispatches meanwhile `until` ends;
    /// the seconds from the server's start and the dispatch latencies (ms).
    func measure(
        _ databaseURL: String, _ environment: [String: String], until: @escaping @Sendable (BenchHTTP) async throws -> Void
    ) async throws -> (seconds: Double, latencies: [Double]) {
        let started = ContinuousClock.now
        let server = try BenchServer.start(onExisting: databaseURL, environment: environment)
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = writers + 8
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let token = try await BenchHTTP(client: client, baseURLs: server.baseURLs).login(target)
            let http = BenchHTTP(client: client, baseURLs: server.baseURLs, token: token)
            let bench = BenchContext(server: server, client: client, http: http, report: BenchReport())
            let (_, latencies) = try await BenchBulk.whileDispatching(writers: writers, bench) { try await until(http) }
            let seconds = (ContinuousClock.now - started).seconds
            await server.stop()
            try await client.shutdown()
            return (seconds, latencies)
        } catch {
            await server.stop()
            try? await client.shutdown()
            throw error
        }
    }

    /// Polls `/metrics` until `orch_tasks_pruned_total` reaches the backlog.
    func waitForPruned(_ http: BenchHTTP) async throws {
        while true {
            let response = try await http.send(.GET, "/metrics", limit: 16 << 20)
            let text = String(buffer: response.body)
            let line = text.split(separator: "\n").first { $0.hasPrefix("orch_tasks_pruned_total ") }
            let pruned = line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
            if pruned >= Double(tasks) { return }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
