import Foundation

/// A server under measurement: one this process started, or one given by URL.
final class BenchServer: @unchecked Sendable {
    let baseURL: String
    let process: Process?
    private let directory: URL?

    static let adminPassword = "bench-admin-password"

    /// Starts `orch serve` (this same executable) on a free port and a temporary database, or
    /// on `databasePath` (kept) when given.
    init(databasePath: String? = nil, environment extra: [String: String] = [:]) throws {
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
    }

    /// Resident memory of the started server in KiB, from /proc; `nil` for a remote one.
    func residentKiB() -> Int? {
        guard let process,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
    }

    func stop() {
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
