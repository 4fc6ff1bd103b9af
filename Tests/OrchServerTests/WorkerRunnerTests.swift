import Foundation
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// `orch worker` (the built executable) running real shell scripts for tasks of a live server.
@Suite struct WorkerRunnerTests {
    /// A running `orch worker`; its log (standard error) is collected.
    final class WorkerProcess: @unchecked Sendable {
        let process = Process()
        let log = Printed()

        init(core: String, port: Int, token: String, script: URL, extra: [String] = []) throws {
            process.executableURL = ServerProcess.executable
            process.arguments =
                [
                    "worker", "--core", core, "--url", "http://127.0.0.1:\(port)", "--token", token, "--lease", "3", "--grace",
                    "2",
                ] + extra + ["--", "/bin/sh", script.path]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let log = self.log
            Thread.detachNewThread {
                while true {
                    let chunk = errors.fileHandleForReading.availableData
                    if chunk.isEmpty { return }
                    log.append(String(decoding: chunk, as: UTF8.self))
                }
            }
        }

        /// SIGTERM, then waits for the exit (SIGKILL after 15 s); returns the exit status.
        func stop() -> Int32 {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            _ = ServerProcess.exited(process, within: 10)
            return process.terminationStatus
        }
    }

    static func script(_ body: String, in directory: URL, name: String = "task.sh") throws -> URL {
        let file = directory.appendingPathComponent(name)
        try ("#!/bin/sh\n" + body + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-worker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Waits (up to 20 s) until the task satisfies `condition`; returns it as last seen.
    static func waitForTask(_ api: APIClient, _ token: String, _ id: String, _ condition: (OrchTask) -> Bool) async throws
        -> OrchTask
    {
        var task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
        for _ in 0..<400 where !condition(task) {
            try await Task.sleep(for: .milliseconds(50))
            task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
        }
        return task
    }

    static func dispatch(_ api: APIClient, _ token: String, core: String, timeout: Int = 300, metadata: [String: JSONValue] = [:])
        async throws -> String
    {
        try await api.send(
            .post, "/dispatch", token: token, body: DispatchRequest(coreID: core, timeout: timeout, metadata: metadata)
        ).decode(DispatchResponse.self).taskID
    }

    @Test(arguments: TestBackend.all)
    func scriptCompletesWithProgressAndAJSONResult(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = try Self.script(
            """
            echo "progress: 40 halfway there"
            echo "working on $ORCH_TASK_ID (attempt $ORCH_ATTEMPT, core $ORCH_CORE_ID)"
            echo "{\\"task\\": \\"$ORCH_TASK_ID\\", \\"meta\\": $ORCH_TASK_METADATA}"
            """, in: directory)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let worker = try WorkerProcess(core: "sh-ok", port: port, token: token, script: script)
            let id = try await Self.dispatch(api, token, core: "sh-ok", metadata: ["batch": "b-7"])
            let task = try await Self.waitForTask(api, token, id) { $0.status.isTerminal }
            #expect(worker.stop() == 0)
            #expect(task.status == .completed, "\(worker.log.text)")
            #expect(task.result == ["task": .string(id), "meta": ["batch": "b-7"]])
            #expect(task.workerID != nil && task.duration != nil)
            let events = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events
            let progress = try #require(events.first { $0.eventType == "task.progress" })
            #expect(progress.data["progress"] == 40 && progress.data["message"] == "halfway there")
            #expect(worker.log.text.contains("task \(id) (attempt 1) completed"))
        }
    }

    @Test(arguments: TestBackend.all)
    func failingScriptFailsWithItsExitCodeAndStderr(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = try Self.script("echo 'disk full' >&2\nexit 3", in: directory)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let worker = try WorkerProcess(core: "sh-fail", port: port, token: token, script: script)
            let id = try await Self.dispatch(api, token, core: "sh-fail")
            let task = try await Self.waitForTask(api, token, id) { $0.status.isTerminal }
            #expect(worker.stop() == 0)
            #expect(task.status == .failed)
            #expect(task.error?.objectValue?["exit_code"] == 3)
            #expect(task.error?.objectValue?["stderr"]?.stringValue?.contains("disk full") == true)
            // The worker reports with its lease, so the failure was retried until attempts ran out.
            #expect(task.attempts == 3)
            let events = try await api.request(.get, "/jobs/\(id)/events?event_type=task.requeued", token: token)
                .decode(TaskEventList.self).events
            #expect(events.map { $0.data["reason"] } == ["retry", "retry"])
        }
    }

    @Test(arguments: TestBackend.all)
    func scriptPastItsTimeoutIsKilledAndTheTaskFails(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("terminated")
        let script = try Self.script("trap 'echo term > \(marker.path); exit 143' TERM\nsleep 60 &\nwait $!", in: directory)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let worker = try WorkerProcess(core: "sh-slow", port: port, token: token, script: script)
            let id = try await Self.dispatch(api, token, core: "sh-slow", timeout: 1)
            let task = try await Self.waitForTask(api, token, id) { $0.status.isTerminal }
            #expect(task.status == .failed)
            #expect(task.error?.objectValue?["reason"] == "timeout" || "\(task.error ?? .null)".contains("timeout"))
            // The worker stopped the program (SIGTERM, which the script traps).
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: marker.path) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(FileManager.default.fileExists(atPath: marker.path), "\(worker.log.text)")
            #expect(worker.stop() == 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func cancellingARunningTaskStopsItsProgram(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("terminated")
        let script = try Self.script(
            "trap 'echo term > \(marker.path); exit 143' TERM\necho 'progress: 10 started'\nsleep 60 &\nwait $!", in: directory)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let worker = try WorkerProcess(core: "sh-cancel", port: port, token: token, script: script)
            let id = try await Self.dispatch(api, token, core: "sh-cancel")
            _ = try await Self.waitForTask(api, token, id) { $0.progress == 10 }
            let cancel = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .cancelled))
            #expect(cancel.status == .ok)
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: marker.path) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(FileManager.default.fileExists(atPath: marker.path), "\(worker.log.text)")
            #expect(worker.stop() == 0)
            #expect(try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self).status == .cancelled)
            #expect(worker.log.text.contains("task \(id) (attempt 1) cancelled"))
        }
    }

    @Test(arguments: TestBackend.all)
    func twentyTasksThroughFourSlotsEachRunOnce(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let ledger = directory.appendingPathComponent("ledger")
        let script = try Self.script(
            "echo \"$ORCH_TASK_ID\" >> \(ledger.path)\nsleep 0.2\necho '{\"ok\": true}'", in: directory)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let worker = try WorkerProcess(core: "sh-many", port: port, token: token, script: script, extra: ["--concurrency", "4"])
            var ids: [String] = []
            for _ in 0..<20 { ids.append(try await Self.dispatch(api, token, core: "sh-many")) }
            for id in ids {
                let task = try await Self.waitForTask(api, token, id) { $0.status.isTerminal }
                #expect(task.status == .completed && task.attempts == 1)
            }
            #expect(worker.stop() == 0)
            let ran = try String(contentsOf: ledger, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(ran.count == 20 && Set(ran) == Set(ids))
        }
    }
}
