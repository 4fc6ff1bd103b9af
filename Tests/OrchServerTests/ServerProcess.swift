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

    /// Starts `orch serve` on a free port with `environment` added, and waits until it listens.
    /// Standard error goes to `standardErrorFile` when given. With `descriptorLimit` the server
    /// runs under `ulimit -n` of that many descriptors (soft and hard).
    init(
        arguments: [String] = [], environment: [String: String], standardErrorFile: URL? = nil,
        descriptorLimit: Int? = nil
    ) throws {
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
        let handle = output.fileHandleForReading
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            outputText += String(decoding: chunk, as: UTF8.self)
            if let range = outputText.range(of: #"listening on http://[^:]+:(\d+)"#, options: .regularExpression) {
                let match = outputText[range]
                port = Int(match.split(separator: ":").last ?? "") ?? 0
                return
            }
        }
        process.terminate()
        throw ServerProcessError(message: "orch serve did not start: \(outputText)")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The server's process id.
    var pid: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits for the process to exit; returns its status.
    @discardableResult
    func stop(signal: Int32) -> Int32 {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// ``stop(signal:)`` on a thread of its own, so the wait blocks no cooperative thread.
    func stopped(signal: Int32) async -> Int32 {
        await offThePool { self.stop(signal: signal) }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
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
