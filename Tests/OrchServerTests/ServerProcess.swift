import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchModels
import Testing

/// A real `orch serve` process, for behaviour that needs a real process: signals, `kill -9`.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private(set) var port = 0
    private(set) var outputText = ""

    /// The `orch` executable built next to the test bundle.
    static var executable: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("orch")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/orch")
    }

    /// Starts `orch serve` on a free port with `environment` added, and waits (at most 60 s)
    /// until it listens. Standard error goes to `standardErrorFile` when given. With
    /// `descriptorLimit` the server runs under `ulimit -n` of that many descriptors (soft and
    /// hard). The wait happens on a thread of its own, so it blocks no cooperative thread.
    static func start(
        arguments: [String] = [], environment: [String: String], standardErrorFile: URL? = nil,
        descriptorLimit: Int? = nil
    ) async throws -> ServerProcess {
        try await offThePool {
            Result {
                try ServerProcess(
                    arguments: arguments, environment: environment, standardErrorFile: standardErrorFile,
                    descriptorLimit: descriptorLimit)
            }
        }.get()
    }

    private init(arguments: [String], environment: [String: String], standardErrorFile: URL?, descriptorLimit: Int?) throws {
        if let descriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments =
                ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", Self.executable.path, "serve", "--port", "0"]
                + arguments
        } else {
            process.executableURL = Self.executable
            process.arguments = ["serve", "--port", "0"] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["ORCH_DATABASE_POOL"] = "4"
        env.merge(environment) { _, new in new }
        process.environment = env
        process.standardOutput = output
        if let standardErrorFile {
            FileManager.default.createFile(atPath: standardErrorFile.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: standardErrorFile)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        let descriptor = output.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(60)
        var buffer = [UInt8](repeating: 0, count: 4096)
        // poll(2) with the time left, never a read that could wait past the deadline.
        while Date() < deadline {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            outputText += String(decoding: buffer[0..<count], as: UTF8.self)
            if let range = outputText.range(of: #"listening on https?://[^:]+:(\d+)"#, options: .regularExpression) {
                let match = outputText[range]
                port = Int(match.split(separator: ":").last ?? "") ?? 0
                return
            }
        }
        kill(process.processIdentifier, SIGKILL)
        throw ServerProcessError(message: "orch serve did not start: \(outputText)")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The server's process id.
    var pid: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits (at most 30 s, then SIGKILL) for the process to exit; returns
    /// its status, or -1 when it never exited. Waits by polling, never on Foundation's
    /// `waitUntilExit`, which can hang when called off the main thread.
    @discardableResult
    func stop(signal: Int32) -> Int32 {
        kill(process.processIdentifier, signal)
        if Self.exited(process, within: 30) { return process.terminationStatus }
        kill(process.processIdentifier, SIGKILL)
        return Self.exited(process, within: 10) ? process.terminationStatus : -1
    }

    /// ``stop(signal:)`` on a thread of its own, so the wait blocks no cooperative thread.
    func stopped(signal: Int32) async -> Int32 {
        await offThePool { self.stop(signal: signal) }
    }

    /// Whether `process` has exited within `seconds`.
    static func exited(_ process: Process, within seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            _ = Self.exited(process, within: 10)
        }
    }
}

struct ServerProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension HTTPClient {
    /// Sends a JSON request and returns the status and body.
    func json(_ method: HTTPMethod, _ url: String, token: String? = nil, body: String? = nil) async throws
        -> (status: Int, body: Data)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await execute(request, timeout: .seconds(30))
        let data = try await response.body.collect(upTo: 10 << 20)
        return (Int(response.status.code), Data(buffer: data))
    }
}
