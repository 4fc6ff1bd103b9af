import ArgumentParser
import Foundation
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// `orch bench large`: read paths and dispatch on a large store.
///
/// The store (1,000,000 tasks with 5 events each by default: 90% completed, 5% failed, 5%
/// queued, over 100 cores and all priorities) is built once at `--store` and reused by later
/// runs. Then a server on it answers `GET /tasks` with filters and `GET /jobs/{id}/events`
/// (p50/p99/p999 from one client, and p99 with four at once), and takes dispatches at 64
/// connections, compared with a fresh empty store measured the same way.
struct BenchLarge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "large", abstract: "Read paths and dispatch with 1,000,000 tasks and 5,000,000 events stored.")

    @OptionGroup var target: BenchTarget
    @Option(help: "The large store; built when missing.") var store = Self.defaultStorePath
    @Option(help: "Tasks in the store.") var tasks = 1_000_000
    @Option(help: "Events per task.") var eventsPerTask = 5
    @Option(help: "Seconds per measured step.") var duration = 8

    static var defaultStorePath: String {
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache").path
        return "\(cache)/orch-bench/large.sqlite"
    }

    static let cores = 100

    func run() async throws {
        guard target.url == nil else { throw ValidationError("large starts its own servers; --url is not supported") }
        try await buildIfMissing()
        let report = BenchReport()
        // The same dispatch load on an empty store first, for the comparison.
        var empty = 0.0
        let wrk = WrkRunner.find()
        try await target.withContext(connections: 72, report: report, finish: false) { bench in
            empty = try await BenchDispatch.figures(connections: 64, seconds: duration, wrk: wrk, bench).requestsPerSecond
        }
        try await target.withContext(connections: 72, databasePath: store, report: report) { bench in
            let ids = try await sampleTaskIDs(bench.http)
            let reads: [(String, @Sendable (Int) -> String)] = [
                ("GET /tasks?core_id=…", { "/tasks?core_id=core-\($0 % Self.cores)&limit=50" }),
                ("GET /tasks?status=queued&core_id=…", { "/tasks?status=queued&core_id=core-\($0 % Self.cores)&limit=50" }),
                ("GET /tasks?status=failed&sort=updated_at", { _ in "/tasks?status=failed&sort=updated_at&limit=50" }),
                ("GET /tasks?status=completed", { _ in "/tasks?status=completed&limit=50" }),
                ("GET /tasks?core_id=…&sort=priority", { "/tasks?core_id=core-\($0 % Self.cores)&sort=priority&limit=50" }),
                ("GET /tasks?priority=…&order=asc", { "/tasks?priority=\($0 % 10 + 1)&order=asc&limit=50&offset=100" }),
                ("GET /jobs/{id}/events", { "/jobs/\(ids[$0 % ids.count])/events" }),
            ]
            for (name, path) in reads {
                // One client: the latency of the read itself; four: the same under contention
                // for the two cores (reported, no target). A second unmeasured first warms
                // the caches.
                _ = try await Self.readLoad(clients: 1, duration: .seconds(1), http: bench.http, path: path)
                let alone = try await Self.readLoad(clients: 1, duration: .seconds(duration), http: bench.http, path: path)
                bench.report.addLatencies("large store, \(name)", "latency", alone, p99Target: "<= 5")
                let shared = try await Self.readLoad(clients: 4, duration: .seconds(duration), http: bench.http, path: path)
                bench.report.add("large store, \(name)", "4 clients p99", Statistics(shared).percentile(0.99), "ms")
            }
            let figures = try await BenchDispatch.figures(connections: 64, seconds: duration, wrk: wrk, bench)
            let scenario = "large store, dispatch 64 connections" + (wrk == nil ? "" : " (wrk)")
            bench.report.add(scenario, "throughput", figures.requestsPerSecond, "requests/s")
            bench.report.add(scenario, "empty store", empty, "requests/s")
            bench.report.add(scenario, "share of empty", 100 * figures.requestsPerSecond / empty, "%", target: ">= 80")
            bench.report.add(scenario, "latency p99", figures.p99, "ms")
        }
    }

    /// Task ids spread over the store, for the events reads.
    func sampleTaskIDs(_ http: BenchHTTP) async throws -> [String] {
        var ids: [String] = []
        for core in stride(from: 0, to: Self.cores, by: 10) {
            let response = try await http.send(.GET, "/tasks?core_id=core-\(core)&limit=100")
            let list = try Timestamp.makeDecoder().decode(TaskList.self, from: Data(buffer: response.body))
            ids += list.tasks.map(\.taskID)
        }
        guard !ids.isEmpty else { throw BenchError("the large store has no tasks") }
        return ids
    }

    /// `clients` loops of GET `path(i)`; every latency in milliseconds.
    static func readLoad(clients: Int, duration: Duration, http: BenchHTTP, path: @escaping @Sendable (Int) -> String)
        async throws -> [Double]
    {
        let latencies = Latencies()
        let deadline = ContinuousClock.now + duration
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    var mine: [Double] = []
                    var round = client
                    while ContinuousClock.now < deadline {
                        let begin = ContinuousClock.now
                        let response = try await http.send(.GET, path(round), limit: 16 << 20)
                        mine.append((ContinuousClock.now - begin).milliseconds)
                        guard response.status == 200 else { throw BenchError("\(path(round)) answered \(response.status)") }
                        round += clients
                    }
                    latencies.values.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        return latencies.values.withLock { $0 }
    }

    /// Builds the store unless a complete one (its marker setting written last) is there.
    func buildIfMissing() async throws {
        let marker = "bench_large:tasks=\(tasks),events=\(eventsPerTask)"
        if FileManager.default.fileExists(atPath: store) {
            let existing = try SQLiteStore(location: .sqliteFile(path: store))
            let complete = try await existing.setting("bench_large") == marker
            try await existing.close()
            if complete {
                print("large store: reusing \(store)")
                return
            }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + suffix) }
        }
        try FileManager.default.createDirectory(
            atPath: (store as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        print("large store: building \(tasks) tasks x \(eventsPerTask) events at \(store) (once)")
        let database = try SQLiteStore(location: .sqliteFile(path: store))
        var generator = SystemRandomNumberGenerator()
        let start = Date().addingTimeInterval(-30 * 86400)
        let began = ContinuousClock.now
        for first in stride(from: 0, to: tasks, by: 1000) {
            let transitions = (first..<min(first + 1000, tasks)).map { index in
                Self.transition(index, total: tasks, events: eventsPerTask, start: start, &generator)
            }
            _ = try await database.insertTasks(transitions, activeSince: start)
            if first % 100_000 == 0 && first > 0 {
                print("large store: \(first) tasks (\(Int((ContinuousClock.now - began).seconds)) s)")
            }
        }
        _ = try await database.insertSettingIfAbsent("bench_large", value: marker)
        try await database.close()
        print("large store: built in \(Int((ContinuousClock.now - began).seconds)) s")
    }

    /// Task `index` of the large store: finished mostly, some queued, spread over a month.
    static func transition(
        _ index: Int, total: Int, events: Int, start: Date, _ generator: inout SystemRandomNumberGenerator
    ) -> TaskTransition {
        let created = start.addingTimeInterval(Double(index) * 30 * 86400 / Double(total))
        let request = DispatchRequest(
            coreID: "core-\(index % cores)", priority: Int.random(in: 1...10, using: &generator),
            metadata: ["batch": .int(Int64(index / 1000)), "source": "bench"])
        var transition = TaskLifecycle.dispatch(request, id: Identifier.make("task"), createdBy: nil, now: created)
        let roll = Int.random(in: 0..<100, using: &generator)
        guard roll >= 5 else { return transition }
        let started = created.addingTimeInterval(0.5)
        let finished = started.addingTimeInterval(Double.random(in: 1...60, using: &generator))
        transition.task.status = roll < 10 ? .failed : .completed
        transition.task.attempts = 1
        transition.task.startedAt = started
        transition.task.completedAt = finished
        transition.task.updatedAt = finished
        transition.task.duration = finished.timeIntervalSince(started)
        transition.task.workerID = "worker-\(index % 16)"
        transition.task.progress = 100
        if transition.task.status == .completed { transition.task.result = ["ok": true] } else { transition.task.error = "exit 1" }
        transition.events.append(EventDraft(type: .taskStarted, timestamp: started, data: ["worker_id": .string("worker-\(index % 16)")]))
        for step in 0..<max(0, events - 3) {
            transition.events.append(
                EventDraft(type: .taskProgress, timestamp: started.addingTimeInterval(Double(step)), data: ["progress": .int(Int64(step * 10))]))
        }
        transition.events.append(
            EventDraft(type: EventType(rawValue: "task.\(transition.task.status.rawValue)") ?? .taskCompleted, timestamp: finished, data: ["duration": .double(transition.task.duration!)]))
        return transition
    }
}
