import Foundation
import OrchStore

/// The server under measurement: one or several nodes this process started (several on one
/// PostgreSQL database), or ones given by URL. Requests are spread over the nodes round-robin
/// (``BenchHTTP``).
final class BenchServer: @unchecked Sendable {
    /// Every node's base URL.
    let baseURLs: [String]
    /// The processes this bench started, one per node.
    let processes: [Process]
    private let directory: URL?
    /// The fresh PostgreSQL database the nodes run on (dropped at stop), and its server.
    private let postgres: (server: PostgresURL, database: String)?

    static let adminPassword = "bench-admin-password"

    /// The first node's base URL.
    var baseURL: String { baseURLs[0] }
    /// The first node's process.
    var process: Process? { processes.first }

    /// Starts `nodes` `orch serve` processes on one fresh database of the PostgreSQL server
    /// `postgres` when given (the first alone, so that it creates the admin), else one on a
    /// temporary SQLite file (or `databasePath`, kept).
    static func start(
        databasePath: String? = nil, postgres: PostgresURL?, nodes: Int = 1, environment: [String: String] = [:]
    ) async throws -> BenchServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard let postgres else {
            let database = databasePath ?? directory.appendingPathComponent("bench.sqlite").path
            let (process, url) = try launch(environment.merging(["ORCH_DATABASE_URL": "sqlite://\(database)"]) { new, _ in new })
            return BenchServer(baseURLs: [url], processes: [process], directory: directory, postgres: nil)
        }
        let name = "orch_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let database = try await PostgresAdmin.createDatabase(name, on: postgres)
        var started: [(Process, String)] = []
        do {
            for node in 1...max(1, nodes) {
                started.append(
                    try launch(
                        environment.merging([
                            "ORCH_DATABASE_URL": database.connectionString, "ORCH_NODE_ID": "bench-node-\(node)",
                        ]) { new, _ in new }))
            }
        } catch {
            for (process, _) in started { process.terminate() }
            try? await PostgresAdmin.dropDatabase(name, on: postgres)
            throw error
        }
        return BenchServer(
            baseURLs: started.map(\.1), processes: started.map(\.0), directory: directory, postgres: (postgres, name))
    }

    /// Starts one `orch serve` on the database at `databaseURL`, which outlives it (the caller
    /// made it and removes it).
    static func start(onExisting databaseURL: String, environment: [String: String]) throws -> BenchServer {
        let (process, url) = try launch(environment.merging(["ORCH_DATABASE_URL": databaseURL]) { new, _ in new })
        return BenchServer(baseURLs: [url], processes: [process], directory: nil, postgres: nil)
    }

    /// Starts `orch serve` (this same executable) on a free port with rate limits off;
    /// returns it and its base URL once it listens.
    private static func launch(_ extra: [String: String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["serve", "--port", "0"]
        var environment = ProcessInfo.processInfo.environment
        environment["ORCH_ADMIN_PASSWORD"] = Self.adminPassword
        environment["ORCH_RATE_LIMITS"] = "admin=0,operator=0,viewer=0,system=0,anonymous=0"
        // The bench opens up to 1,000 connections at once from one address, each anonymous until
        // its first request is read: the per-address cap is for strangers, not for the bench.
        environment["ORCH_MAX_ANONYMOUS_CONNECTIONS"] = "0"
        environment["ORCH_LOG_LEVEL"] = "error"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        var text = ""
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw BenchError("orch serve exited before listening: \(text)") }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: #"listening on http://[^\s]+"#, options: .regularExpression) {
                return (process, String(text[range].dropFirst("listening on ".count)))
            }
        }
    }

    private init(
        baseURLs: [String], processes: [Process], directory: URL?, postgres: (server: PostgresURL, database: String)?
    ) {
        self.baseURLs = baseURLs
        self.processes = processes
        self.directory = directory
        self.postgres = postgres
    }

    /// Servers given by URL: one, or several nodes separated by commas.
    convenience init(url: String) {
        let urls = url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.init(baseURLs: urls.isEmpty ? [url] : urls, processes: [], directory: nil, postgres: nil)
    }

    /// Resident memory of the first started node in KiB, from /proc; `nil` for a remote one.
    func residentKiB() -> Int? {
        guard let process,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
    }

    /// CPU seconds (user and system) the started nodes have used so far.
    func cpuSeconds() -> Double {
        ProcessCPU.seconds(pids: processes.map(\.processIdentifier))
    }

    func stop() async {
        for process in processes where process.isRunning { process.terminate() }
        for process in processes { process.waitUntilExit() }
        if let directory { try? FileManager.default.removeItem(at: directory) }
        if let postgres { try? await PostgresAdmin.dropDatabase(postgres.database, on: postgres.server) }
    }
}

/// CPU time of processes, from /proc.
enum ProcessCPU {
    /// User and system CPU seconds of `pids` so far.
    static func seconds(pids: [Int32]) -> Double {
        pids.reduce(0) { $0 + seconds(pid: $1) }
    }

    /// User and system CPU seconds of every process named `name` (such as `postgres`, whose
    /// server is a process per connection).
    static func seconds(named name: String) -> Double {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                == name
        }.reduce(0) { $0 + seconds(pid: $1) }
    }

    static func seconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
