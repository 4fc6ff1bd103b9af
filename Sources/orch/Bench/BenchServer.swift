import Foundation
import OrchStore

/// A server under measurement: one this process started, or one given by URL.
final class BenchServer: @unchecked Sendable {
    let baseURL: String
    let process: Process?
    private let directory: URL?
    /// The fresh PostgreSQL database this server runs on (dropped at stop), and its server.
    private let postgres: (server: PostgresURL, database: String)?

    static let adminPassword = "bench-admin-password"

    /// Starts `orch serve` on a fresh database of the PostgreSQL server `postgres` when given,
    /// else as ``init(databasePath:environment:postgres:)`` does.
    static func start(databasePath: String? = nil, postgres: PostgresURL?, environment: [String: String] = [:])
        async throws -> BenchServer
    {
        guard let postgres else { return try BenchServer(databasePath: databasePath, environment: environment) }
        let name = "orch_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let database = try await PostgresAdmin.createDatabase(name, on: postgres)
        do {
            return try BenchServer(
                databasePath: nil, environment: environment.merging(["ORCH_DATABASE_URL": database.connectionString]) { $1 },
                postgres: (postgres, name))
        } catch {
            try? await PostgresAdmin.dropDatabase(name, on: postgres)
            throw error
        }
    }

    /// Starts `orch serve` (this same executable) on a free port and a temporary database, or
    /// on `databasePath` (kept) when given (`ORCH_DATABASE_URL` in `extra` wins over both).
    init(
        databasePath: String? = nil, environment extra: [String: String] = [:],
        postgres: (server: PostgresURL, database: String)? = nil
    ) throws {
        self.postgres = postgres
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["serve", "--port", "0"]
        var environment = ProcessInfo.processInfo.environment
        let database = databasePath ?? directory.appendingPathComponent("bench.sqlite").path
        environment["ORCH_DATABASE_URL"] = "sqlite://\(database)"
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
                baseURL = String(text[range].dropFirst("listening on ".count))
                break
            }
        }
        self.process = process
        self.directory = directory
    }

    /// A server given by URL.
    init(url: String) {
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        process = nil
        directory = nil
        postgres = nil
    }

    /// Resident memory of the started server in KiB, from /proc; `nil` for a remote one.
    func residentKiB() -> Int? {
        guard let process,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
    }

    func stop() async {
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        if let directory { try? FileManager.default.removeItem(at: directory) }
        if let postgres { try? await PostgresAdmin.dropDatabase(postgres.database, on: postgres.server) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
