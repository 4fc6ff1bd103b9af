import Foundation
import HummingbirdTesting
import OrchClient
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// The `orch` command line (the built executable) against a live server.
@Suite struct CommandLineTests {
    /// Runs `orch` with `arguments`; the config directory is `home` so no real login is touched.
    static func orch(_ arguments: [String], home: URL, environment: [String: String] = [:]) async throws -> ScriptRunner.Result {
        try await ScriptRunner.run(
            [ServerProcess.executable.path] + arguments,
            environment: environment.merging(["XDG_CONFIG_HOME": home.path, "ORCH_URL": "", "ORCH_TOKEN": ""]) { $1 })
    }

    static func temporaryHome() throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("orch-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        return home
    }

    /// Every command parses its own options (two options of one name would fail here).
    @Test(arguments: [
        "serve", "login", "dispatch", "tasks", "task", "events", "lock acquire", "lock release", "lock list", "user create",
        "user list", "user update", "token create", "token list", "token revoke", "worker", "bench",
    ])
    func everyCommandHasHelp(command: String) async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let result = try await Self.orch(command.split(separator: " ").map(String.init) + ["--help"], home: home)
        #expect(result.status == 0, "\(command): \(result.errors)")
        #expect(result.output.contains("USAGE: orch \(command)"))
    }

    @Test(arguments: TestBackend.all)
    func loginStoresTheTokenPrivatelyAndOtherCommandsUseIt(backend: TestBackend) async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let url = "http://127.0.0.1:\(port)"
            let login = try await Self.orch(
                ["login", "--url", url, "--username", "admin"], home: home,
                environment: ["ORCH_PASSWORD": TestServer.adminPassword])
            #expect(login.status == 0, "\(login.errors)")
            let file = home.appendingPathComponent("orch/credentials.json")
            let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: String]
            #expect(stored?["url"] == url && (stored?["token"]?.count ?? 0) > 20)

            let token = try await api.adminToken()
            for core in ["cli-a", "cli-b"] {
                _ = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core))
            }
            let tasks = try await Self.orch(["tasks", "--json", "--core", "cli-a"], home: home)
            #expect(tasks.status == 0, "\(tasks.errors)")
            let list = try Timestamp.makeDecoder().decode(TaskList.self, from: Data(tasks.output.utf8))
            #expect(list.tasks.map(\.coreID) == ["cli-a"])
            let table = try await Self.orch(["tasks"], home: home)
            #expect(table.output.hasPrefix("TASK") && table.output.contains("cli-b"))

            let wrong = try await Self.orch(
                ["login", "--url", url, "--username", "admin"], home: home, environment: ["ORCH_PASSWORD": "wrong-password"])
            #expect(wrong.status == 77)
            #expect(wrong.errors.contains("Invalid username or password") && wrong.errors.contains("request req-"))
            #expect(!wrong.errors.contains("Fatal error"))
            let missing = try await Self.orch(["task", "task-nope"], home: home)
            #expect(missing.status == 65 && missing.errors.contains("RESOURCE_NOT_FOUND"))
            let unreachable = try await Self.orch(["tasks", "--url", "http://127.0.0.1:1", "--request-timeout", "2"], home: home)
            #expect(unreachable.status == 69)
        }
    }

    /// `dispatch --wait` follows the task: exit 0 when it completes, 1 when it fails.
    @Test(arguments: TestBackend.all)
    func dispatchWaitExitCodes(backend: TestBackend) async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let url = "http://127.0.0.1:\(port)"
            for (core, outcome, expected) in [("wait-ok", TaskStatus.completed, Int32(0)), ("wait-fail", .failed, 1)] {
                async let run = Self.orch(["dispatch", core, "--wait", "--url", url, "--token", token], home: home)
                // Finish the task as a worker would once it is there.
                var id: String?
                for _ in 0..<800 where id == nil {
                    id = try await api.request(.get, "/tasks?core_id=\(core)", token: token).decode(TaskList.self).tasks.first?.taskID
                    if id == nil { try await Task.sleep(for: .milliseconds(25)) }
                }
                guard let taskID = id else {
                    let result = try await run
                    Issue.record("no task dispatched: status \(result.status), \(result.output) \(result.errors)")
                    return
                }
                try await Task.sleep(for: .milliseconds(300))
                let update =
                    outcome == .completed
                    ? StatusUpdateRequest(status: .completed, result: ["n": 1]) : StatusUpdateRequest(status: .failed, error: "boom")
                #expect(try await api.send(.put, "/jobs/\(taskID)/status", token: token, body: update).status == .ok)
                let result = try await run
                #expect(result.status == expected, "\(core): \(result.errors)")
                #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == taskID)
                #expect(result.errors.contains(outcome == .completed ? "task.completed" : "task.failed"))
            }
        }
    }
}
