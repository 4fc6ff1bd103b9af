import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// The reference's own client code, read out of the API reference at run time (no copy lives in
/// this repository) and run against a live server: only its base URL, token and secret are
/// replaced. What it did is then checked on the server.
@Suite struct ReferenceClientTests {
    static let referenceURL = "http://localhost:8000"
    static let referenceToken = "your-jwt-token"

    static func personalise(_ code: String, port: Int, token: String) throws -> String {
        #expect(code.contains("'\(referenceURL)'") || code.contains("\"\(referenceURL)\""))
        #expect(code.contains("'\(referenceToken)'") || code.contains("\"\(referenceToken)\""))
        return code.replacingOccurrences(of: referenceURL, with: "http://127.0.0.1:\(port)")
            .replacingOccurrences(of: referenceToken, with: token)
    }

    @Test(arguments: TestBackend.all)
    func pythonClientAndUsageExample(backend: TestBackend) async throws {
        let code = try #require(try ReferenceDocument.codeBlocks("python", containing: "class ORCHClient").first)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let script = try Self.personalise(code, port: port, token: token)
            let run = try await ScriptRunner.run(["python3", "-c", script])
            #expect(run.status == 0, "python: \(run.errors)")
            let id = try #require(run.output.firstMatch(of: /Task dispatched: (task-[0-9a-f-]+)/)?.1).description
            let count = try #require(run.output.firstMatch(of: /Task has (\d+) events/)?.1).description

            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(task.coreID == "WORK_AI_01" && task.priority == 2 && task.status == .running && task.progress == 50)
            #expect(task.metadata["source"] == "python_sdk" && task.metadata["batch_id"] == "batch_123")
            let events = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self)
            #expect(String(events.totalEvents) == count)
            #expect(events.events.map(\.eventType) == ["task.created", "task.started", "task.progress"])
            #expect(events.events.last?.data["message"] == "Processing batch data")
        }
    }

    /// Node has `fetch` but no `EventSource`; the harness supplies a minimal one (over `fetch`,
    /// with the `headers` option the reference passes) and holds other requests until an open
    /// stream is connected, as a browser's would be by the time the page goes on. Nothing of the
    /// reference's code is changed.
    @Test(arguments: TestBackend.all)
    func javascriptClientAndUsageExample(backend: TestBackend) async throws {
        let code = try #require(try ReferenceDocument.codeBlocks("javascript", containing: "class ORCHClient").first)
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-js-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("reference.mjs")
            let script = Self.eventSourceHarness + "\n" + (try Self.personalise(code, port: port, token: token)) + "\n"
                + Self.harnessEpilogue
            try script.write(to: file, atomically: true, encoding: .utf8)
            let run = try await ScriptRunner.run(["node", file.path])
            #expect(run.status == 0, "node: \(run.errors)")
            let id = try #require(run.output.firstMatch(of: /Task dispatched: (task-[0-9a-f-]+)/)?.1).description
            #expect(run.output.contains("Received event:"))
            let harness = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("HARNESS ") })
            let received = try #require(
                try JSONSerialization.jsonObject(with: Data(harness.dropFirst("HARNESS ".count).utf8)) as? [[Any]])
            #expect(received.contains { ($0[0] as? String) == "task.progress" && ($0[1] as? String) == id && ($0[2] as? Int) == 75 })
            // The stream's filter held: only progress and completion events arrived.
            #expect(received.allSatisfy { ["task.progress", "task.completed"].contains($0[0] as? String ?? "") })

            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(task.status == .running && task.progress == 75 && task.priority == 2)
            #expect(task.metadata["source"] == "javascript_sdk")
        }
    }

    static let eventSourceHarness = """
        const __sources = [];
        const __received = [];
        const __connecting = [];
        const __fetch = globalThis.fetch;
        globalThis.fetch = async (...args) => { await Promise.all(__connecting); return __fetch(...args); };
        globalThis.EventSource = class {
          constructor(url, init = {}) {
            this.url = url;
            this.onmessage = null;
            this.onerror = null;
            this.controller = new AbortController();
            __sources.push(this);
            let opened;
            __connecting.push(new Promise((resolve) => { opened = resolve; }));
            this.run(init.headers || {}, opened);
          }
          async run(headers, opened) {
            try {
              const response = await __fetch(this.url, { headers, signal: this.controller.signal });
              opened();
              const reader = response.body.getReader();
              const decoder = new TextDecoder();
              let buffer = '';
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buffer += decoder.decode(value, { stream: true });
                let end;
                while ((end = buffer.indexOf('\\n\\n')) >= 0) {
                  const block = buffer.slice(0, end);
                  buffer = buffer.slice(end + 2);
                  const data = block.split('\\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\\n');
                  if (!data) continue;
                  const parsed = JSON.parse(data);
                  if (parsed.event_type !== 'heartbeat') __received.push([parsed.event_type, parsed.task_id, parsed.data && parsed.data.progress]);
                  if (this.onmessage) this.onmessage({ data });
                }
              }
            } catch (error) {
              opened();
              if (error.name !== 'AbortError' && this.onerror) this.onerror(error);
            }
          }
          close() { this.controller.abort(); }
        };
        """

    static let harnessEpilogue = """
        const __deadline = Date.now() + 5000;
        while (!__received.some((e) => e[0] === 'task.progress') && Date.now() < __deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        for (const source of __sources) source.close();
        console.log('HARNESS ' + JSON.stringify(__received));
        """

    /// The reference's signing recipe, with its own example request as the payload (naming a
    /// real task), signs a webhook that the server accepts and applies. The body is sent with
    /// other spacing than the signed form, as clients do.
    @Test(arguments: TestBackend.all)
    func webhookSigningRecipe(backend: TestBackend) async throws {
        let recipe = try #require(try ReferenceDocument.codeBlocks("python", containing: "payload_str = json.dumps").first)
        let example = try #require(
            try ReferenceDocument.codeBlocks("json", containing: "\"event\": \"task.completed\"").first)
        #expect(recipe.contains("payload = {...}") && recipe.contains("webhook_secret = \"your-webhook-secret\""))
        var configuration = WebhookTests.configuration(secrets: ["whsec-reference-run"])
        configuration.rateLimits = ServerConfiguration.defaultRateLimits.mapValues { _ in 0 }
        try await EventStreamTests.withLiveServer(configuration, backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let id = try await EventStreamTests.dispatch(api, token, core: "WORK_AI_01")
            let exampleTaskID = try #require(example.firstMatch(of: /task-[0-9a-f-]+/)).output
            let payload = example.replacingOccurrences(of: exampleTaskID, with: id)
            let script =
                "import json\n"
                + recipe.replacingOccurrences(of: "payload = {...}", with: "payload = json.loads('''\(payload)''')")
                .replacingOccurrences(of: "\"your-webhook-secret\"", with: "\"whsec-reference-run\"")
                + """

                import httpx
                response = httpx.post("http://127.0.0.1:\(port)/webhook", content=json.dumps(payload, indent=2),
                                      headers={**headers, "Content-Type": "application/json"})
                print("HARNESS", response.status_code, response.text)
                """
            let run = try await ScriptRunner.run(["python3", "-c", script])
            #expect(run.status == 0, "python: \(run.errors)")
            let line = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("HARNESS ") })
            #expect(line.hasPrefix("HARNESS 200 "), "\(line)")
            let receipt = try Timestamp.makeDecoder().decode(WebhookReceipt.self, from: Data(line.dropFirst("HARNESS 200 ".count).utf8))
            #expect(receipt.status == "received" && receipt.taskUpdated == true)
            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(task.status == .completed && task.duration == 123.45)
            #expect(task.result?.objectValue?["processed_items"] == 1000)
        }
    }
}
