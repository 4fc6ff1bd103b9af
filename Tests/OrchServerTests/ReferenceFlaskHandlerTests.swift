import Foundation
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// The reference's Flask webhook handler, run as published (read from the reference at test
/// time, loaded without running its `__main__` block, served on a free port), receives the
/// server's callbacks and verifies their signatures with its own code.
@Suite(.serialized) struct ReferenceFlaskHandlerTests {
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test(arguments: TestBackend.all)
    func referenceFlaskHandlerVerifiesAndHandlesCallbacks(backend: TestBackend) async throws {
        let handler = try #require(try ReferenceDocument.codeBlocks("python", containing: "from flask import").first)
        #expect(handler.contains("WEBHOOK_SECRET = \"your-webhook-secret\""))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-flask-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let handlerFile = directory.appendingPathComponent("reference_handler.py")
        try handler.write(to: handlerFile, atomically: true, encoding: .utf8)
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-u", "-c",
            "import runpy, sys; app = runpy.run_path(sys.argv[1], run_name='reference_handler')['app']; app.run(host='127.0.0.1', port=int(sys.argv[2]))",
            handlerFile.path, String(port),
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            // SIGKILL: a SIGTERM may be ignored when the test runner was started with it ignored.
            kill(process.processIdentifier, SIGKILL)
            _ = ServerProcess.exited(process, within: 10)
        }
        let printed = Printed()
        Thread.detachNewThread {
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { return }
                printed.append(String(decoding: chunk, as: UTF8.self))
            }
        }
        // Wait for Flask to listen.
        let ready = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < ready {
            if (try? await HTTPProbe.get("http://127.0.0.1:\(port)/")) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        var configuration = CallbackTests.configuration(retries: [1])
        configuration.webhookSecrets = ["your-webhook-secret"]
        try await TestServer.withApp(configuration, backend: backend) { api in
            let token = try await api.adminToken()
            let url = "http://127.0.0.1:\(port)/webhook"
            let completed = try await CallbackTests.dispatch(api, token, callback: url)
            let failed = try await CallbackTests.dispatch(api, token, callback: url)
            _ = try await api.send(.put, "/jobs/\(completed)/status", token: token, body: StatusUpdateRequest(status: .completed, result: ["rows": 3, "note": "naïve"]))
            _ = try await api.send(.put, "/jobs/\(failed)/status", token: token, body: StatusUpdateRequest(status: .failed, error: "disk full"))
            for id in [completed, failed] {
                let events = try await CallbackTests.events(api, token, id, until: ["webhook.delivered"])
                #expect(events.map(\.eventType) == ["webhook.delivered"], "\(id): \(events)")
                #expect(events.first?.data["status_code"] == 200)
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline && !(printed.text.contains(completed) && printed.text.contains(failed)) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(printed.text.contains("Task \(completed) completed successfully"))
            #expect(printed.text.contains("Task \(failed) failed:"))
        }
    }
}

/// Text a process printed, collected from another thread.
final class Printed: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    func append(_ text: String) { lock.withLock { value += text } }
    var text: String { lock.withLock { value } }
}

import AsyncHTTPClient

enum HTTPProbe {
    /// Any answer at all from `url`.
    static func get(_ url: String) async throws -> Int {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        return Int(response.status.code)
    }
}
