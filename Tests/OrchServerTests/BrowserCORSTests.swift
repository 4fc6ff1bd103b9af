import Foundation
import OrchModels
import OrchTestSupport
import Synchronization
import Testing

@testable import OrchServer

/// The reference's JavaScript client in headless Chromium, on a page served from another origin
/// (another port of 127.0.0.1) than the API's: with that origin in `ORCH_CORS_ORIGINS` it
/// dispatches, streams events and updates a status; with another origin allowed instead, the
/// browser refuses its first request and nothing is dispatched.
@Suite(.serialized) struct BrowserCORSTests {
    /// The page: the scaffold, then as a module (top-level await, as the reference's usage
    /// example is written) the same EventSource harness the Node test uses, the reference's
    /// code with this server's URL and token, and the harness's epilogue.
    static func page(apiPort: Int, token: String) throws -> String {
        let code = try #require(try ReferenceDocument.codeBlocks("javascript", containing: "class ORCHClient").first)
        let script = ReferenceClientTests.eventSourceHarness + "\n"
            + (try ReferenceClientTests.personalise(code, port: apiPort, token: token)) + "\n"
            + ReferenceClientTests.harnessEpilogue + "\nwindow.__done = true;\n"
        return "<!doctype html><html><head><title>orch</title>" + Browser.pageScaffold
            + "<script type=\"module\">\n" + script + "\n</script></head><body></body></html>"
    }

    @Test(arguments: TestBackend.all)
    func theReferenceClientWorksFromAnAllowedOrigin(backend: TestBackend) async throws {
        let page = Browser.Page()
        try await Browser.withPageServer(page) { pagePort in
            var configuration = TestServer.configuration()
            configuration.corsOrigins = try #require(CORSPolicy(parsing: "http://127.0.0.1:\(pagePort)"))
            try await EventStreamTests.withLiveServer(configuration, backend: backend) { api, port, _ in
                let token = try await api.adminToken()
                let html = try Self.page(apiPort: port, token: token)
                page.html.withLock { $0 = html }
                let run = try await Browser.run("http://127.0.0.1:\(pagePort)/")
                #expect(run.status == 0, "browser: \(run.output) \(run.errors)")
                #expect(!run.output.contains("ERROR"), "\(run.output)")
                let id = try #require(run.output.firstMatch(of: /Task dispatched: (task-[0-9a-f-]+)/)?.1).description
                #expect(run.output.contains("Received event:"))
                let harness = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("HARNESS ") })
                let received = try #require(
                    try JSONSerialization.jsonObject(with: Data(harness.dropFirst("HARNESS ".count).utf8)) as? [[Any]])
                #expect(received.contains { ($0[0] as? String) == "task.progress" && ($0[1] as? String) == id })
                let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
                #expect(task.status == .running && task.progress == 75)
                #expect(task.metadata["source"] == "javascript_sdk")
            }
        }
    }

    @Test func theSamePageFailsFromAnOriginNotAllowed() async throws {
        let page = Browser.Page()
        try await Browser.withPageServer(page) { pagePort in
            var configuration = TestServer.configuration()
            configuration.corsOrigins = try #require(CORSPolicy(parsing: "http://127.0.0.1:\(pagePort + 1)"))
            try await EventStreamTests.withLiveServer(configuration) { api, port, _ in
                let token = try await api.adminToken()
                let html = try Self.page(apiPort: port, token: token)
                page.html.withLock { $0 = html }
                let run = try await Browser.run("http://127.0.0.1:\(pagePort)/")
                #expect(run.status == 0, "browser: \(run.output) \(run.errors)")
                #expect(run.output.contains("ERROR"), "\(run.output)")
                #expect(!run.output.contains("Task dispatched"))
                let tasks = try await api.request(.get, "/tasks", token: token).decode(TaskList.self)
                #expect(tasks.totalTasks == 0)
            }
        }
    }
}
