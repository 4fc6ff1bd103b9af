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
        "user list", "user update", "token create", "token list", "token revoke", "worker", "bench", "retry", "cancel",
        "schedule create", "schedule list", "schedule pause", "schedule resume", "schedule delete", "core list",
        "core pause", "core resume", "core limit",
    ])
    func everyCommandHasHelp(command: String) async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let result = try await Self.orch(command.split(separator: " ").map(String.init) + ["--help"], home: home)
        #expect(result.status == 0, "\(command): \(result.errors)")
        #expect(result.output.contains("USAGE: orch \(command)"))
    }

    /// `orch --version` names the commit the binary was built from (what `orch bench` reports),
    /// here the checkout the tests were built in.
    @Test func versionNamesTheCommitTheBinaryWasBuiltFrom() async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let head = try await ScriptRunner.run(["git", "-C", package.path, "rev-parse", "--short=12", "HEAD"])
        try #require(head.status == 0, "git: \(head.errors)")
        let commit = head.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let version = try await Self.orch(["--version"], home: home)
        #expect(version.status == 0)
        #expect(version.output.hasPrefix("\(OrchVersion.current) (commit \(commit)"), "\(version.output)")
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

    /// The scheduling commands against a live server: a delayed dispatch with a retry policy,
    /// bulk cancel (dry run, then for real) and retry, cores paused and capped, a schedule
    /// created, listed, paused and deleted.
    @Test(arguments: TestBackend.all)
    func schedulingCommandsDriveTheServer(backend: TestBackend) async throws {
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let auth = ["--url", "http://127.0.0.1:\(port)", "--token", token]
            let dispatched = try await Self.orch(
                ["dispatch", "cli-later", "--delay", "600", "--max-attempts", "5", "--retry-initial", "2", "--retry-max", "60"] + auth,
                home: home)
            #expect(dispatched.status == 0, "\(dispatched.errors)")
            let id = dispatched.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(task.status == .scheduled && task.maxAttempts == 5)
            #expect(task.retryPolicy == RetryPolicy(initialInterval: 2, backoffCoefficient: 2, maximumInterval: 60))
            let both = try await Self.orch(["dispatch", "x", "--delay", "5", "--run-at", "2030-01-01T00:00:00Z"] + auth, home: home)
            #expect(both.status != 0)

            let dry = try await Self.orch(["cancel", "--core", "cli-later", "--dry-run"] + auth, home: home)
            #expect(dry.output.contains("1 matched, 1 would be cancelled"), "\(dry.output) \(dry.errors)")
            #expect(try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self).status == .scheduled)
            let cancelled = try await Self.orch(["cancel", id] + auth, home: home)
            #expect(cancelled.output.contains("1 matched, 1 cancelled"), "\(cancelled.output) \(cancelled.errors)")
            let retried = try await Self.orch(["retry", id] + auth, home: home)
            #expect(retried.status == 0, "\(retried.errors)")
            #expect(try Timestamp.makeDecoder().decode(OrchTask.self, from: Data(retried.output.utf8)).status == .queued)
            #expect(try await Self.orch(["cancel"] + auth, home: home).status != 0)

            #expect(try await Self.orch(["core", "pause", "cli-later"] + auth, home: home).status == 0)
            #expect(try await Self.orch(["core", "limit", "cli-later", "4"] + auth, home: home).status == 0)
            let cores = try await Self.orch(["core", "list", "--json"] + auth, home: home)
            let core = try Timestamp.makeDecoder().decode(CoreList.self, from: Data(cores.output.utf8)).cores.first { $0.coreID == "cli-later" }
            #expect(core?.paused == true && core?.maxRunning == 4 && core?.queued == 1)
            _ = try await Self.orch(["core", "resume", "cli-later"] + auth, home: home)
            _ = try await Self.orch(["core", "limit", "cli-later", "none"] + auth, home: home)
            let resumed = try await api.request(.get, "/cores/cli-later", token: token).decode(CoreInfo.self)
            #expect(!resumed.paused && resumed.maxRunning == nil)

            let created = try await Self.orch(
                ["schedule", "create", "nightly", "--core", "cli-reports", "--cron", "0 3 * * *", "--timezone", "Europe/Paris"] + auth,
                home: home)
            #expect(created.status == 0, "\(created.errors)")
            let schedule = try Timestamp.makeDecoder().decode(Schedule.self, from: Data(created.output.utf8))
            #expect(schedule.timezone == "Europe/Paris" && schedule.nextRunAt != nil)
            let list = try await Self.orch(["schedule", "list"] + auth, home: home)
            #expect(list.output.contains("nightly") && list.output.contains("0 3 * * * (Europe/Paris)"))
            let paused = try await Self.orch(["schedule", "pause", schedule.scheduleID] + auth, home: home)
            #expect(try Timestamp.makeDecoder().decode(Schedule.self, from: Data(paused.output.utf8)).paused)
            #expect(try await Self.orch(["schedule", "delete", schedule.scheduleID] + auth, home: home).status == 0)
            #expect(try await api.request(.get, "/schedules/\(schedule.scheduleID)", token: token).status == .notFound)
        }
    }
}
