import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite(.serialized) struct CallbackTests {
    static func configuration(database: DatabaseURL = .sqliteMemory, retries: [Int] = [1, 1, 1]) -> ServerConfiguration {
        var configuration = WebhookTests.configuration(database: database)
        configuration.callbackRetrySchedule = retries
        configuration.callbackTimeout = 5
        // The receivers listen on the loopback, which callbacks may reach only when named.
        configuration.callbackAllowedHosts = ["127.0.0.1"]
        return configuration
    }

    static func dispatch(_ api: APIClient, _ token: String, callback: String) async throws -> String {
        try await api.send(
            .post, "/dispatch", token: token,
            body: DispatchRequest(coreID: "cb", metadata: ["callback_url": .string(callback)])
        ).decode(DispatchResponse.self).taskID
    }

    static func events(_ api: APIClient, _ token: String, _ id: String, until types: [String]) async throws -> [TaskEvent] {
        let deadline = ContinuousClock.now + .seconds(20)
        var events: [TaskEvent] = []
        while ContinuousClock.now < deadline {
            events = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events
                .filter { $0.eventType.hasPrefix("webhook.") }
            if events.map(\.eventType) == types { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return events
    }

    @Test(arguments: TestBackend.all)
    func callbackIsSignedRetriedAfterA500AndDelivered(backend: TestBackend) async throws {
        let receiver = CallbackReceiver(statuses: [500, 200])
        try await receiver.start()
        defer { receiver.stop() }
        try await TestServer.withServer(Self.configuration(), backend: backend) { api, parts in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, callback: "http://127.0.0.1:\(receiver.port)/hook")
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed, result: ["rows": 2, "ratio": 0.5, "name": "é"]))
            let events = try await Self.events(api, token, id, until: ["webhook.failed", "webhook.delivered"])
            #expect(events.map(\.eventType) == ["webhook.failed", "webhook.delivered"])
            #expect(events.first?.data["status_code"] == 500)
            #expect(events.last?.data["status_code"] == 200)
            #expect(events.last?.data["attempt"] == 2)
            #expect(events.last?.data["latency_ms"] != nil)
            #expect(await receiver.waitFor(2))
            let request = try #require(receiver.received.last)
            // The body verifies over its raw bytes, and it is exactly what the Python recipe
            // produces from it (so re-serialising receivers verify too).
            let signature = try #require(request.signature.flatMap { WebhookSignature(header: $0) })
            #expect(signature.verify(candidates: [request.body], secrets: [WebhookTests.secret]) != nil)
            #expect(try PythonJSON.canonical(request.body) == request.body)
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(payload["event"] as? String == "task.completed")
            #expect(payload["task_id"] as? String == id)
            #expect(payload["core_id"] as? String == "cb")
            #expect(payload["status"] as? String == "success")
            #expect(payload["timestamp"] is Int)
            #expect(((payload["data"] as? [String: Any])?["result"] as? [String: Any])?["rows"] as? Int == 2)
            let metrics = try Exposition(String(decoding: parts.metrics.render(), as: UTF8.self))
            #expect(metrics.value("orch_webhook_deliveries_total", ["outcome": "retry"]) == 1)
            #expect(metrics.value("orch_webhook_deliveries_total", ["outcome": "delivered"]) == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func a410StopsAndTheScheduleEnds(backend: TestBackend) async throws {
        let gone = CallbackReceiver(statuses: [410])
        try await gone.start()
        defer { gone.stop() }
        let failing = CallbackReceiver(statuses: [503])
        try await failing.start()
        defer { failing.stop() }
        try await TestServer.withServer(Self.configuration(retries: [1, 1]), backend: backend) { api, parts in
            let token = try await api.adminToken()
            let first = try await Self.dispatch(api, token, callback: "http://127.0.0.1:\(gone.port)/hook")
            let second = try await Self.dispatch(api, token, callback: "http://127.0.0.1:\(failing.port)/hook")
            for id in [first, second] {
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .failed, error: "boom"))
            }
            let goneEvents = try await Self.events(api, token, first, until: ["webhook.failed"])
            #expect(goneEvents.count == 1 && goneEvents[0].data["final"] == true)
            let failingEvents = try await Self.events(api, token, second, until: ["webhook.failed", "webhook.failed", "webhook.failed"])
            #expect(failingEvents.count == 3)
            #expect(failingEvents.last?.data["final"] == true)
            try await Task.sleep(for: .seconds(1.5))
            #expect(gone.received.count == 1 && failing.received.count == 3)
            let metrics = try Exposition(String(decoding: parts.metrics.render(), as: UTF8.self))
            #expect(metrics.value("orch_webhook_deliveries_total", ["outcome": "abandoned"]) == 2)
            #expect(metrics.value("orch_webhook_deliveries_total", ["outcome": "retry"]) == 2)
        }
    }

    /// A delivery that could not be made before a restart is made after it.
    @Test(arguments: TestBackend.all)
    func pendingDeliveryResumesAfterARestart(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            let configuration = Self.configuration(
                database: database, retries: [1, 1, 1, 1])
            let receiver = CallbackReceiver(statuses: [200])
            try await receiver.start()
            let port = receiver.port
            receiver.stop()
            try await Task.sleep(for: .milliseconds(200))
            let taskID = OrderLog()
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                let id = try await Self.dispatch(api, token, callback: "http://127.0.0.1:\(port)/hook")
                taskID.append(id)
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .cancelled))
                let failed = try await Self.events(api, token, id, until: ["webhook.failed"])
                #expect(failed.first?.data["status_code"] == .null)
            }
            // The receiver comes back on the same port; the server restarts.
            let back = CallbackReceiver(statuses: [200])
            try await back.startOn(port: port)
            defer { back.stop() }
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                let id = try #require(taskID.values.first)
                let events = try await Self.events(api, token, id, until: ["webhook.failed", "webhook.delivered"])
                #expect(events.map(\.eventType) == ["webhook.failed", "webhook.delivered"])
                #expect(await back.waitFor(1))
            }
        }
    }

    @Test(arguments: ["ftp://example.com/x", "not a url", "/relative", "http://"])
    func nonHTTPCallbackURLIsRefusedAtDispatch(url: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(Self.configuration(), backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.send(
                    .post, "/dispatch", token: token, body: DispatchRequest(coreID: "cb", metadata: ["callback_url": .string(url)]))
                #expect(response.status == .badRequest)
                #expect(try response.error.details["field"] == "metadata.callback_url")
            }
        }
    }

    /// Without `ORCH_CALLBACK_ALLOWED_HOSTS`, a callback to an address inside the network is
    /// refused at dispatch when the URL names it, in any form the resolver reads.
    @Test(arguments: [
        ("http://127.0.0.1:9/hook", false), ("http://127.1/", false), ("http://2130706433/", false),
        ("http://0x7f.0.0.1/", false), ("http://localhost:8080/", false), ("http://api.localhost/", false),
        ("http://10.1.2.3/x", false), ("http://172.16.5.4/", false), ("http://192.168.0.1/", false),
        ("http://169.254.169.254/latest/meta-data/", false), ("http://100.64.0.1/", false), ("http://0.0.0.0/", false),
        ("http://224.0.0.1/", false), ("http://93.184.216.34/hook", true), ("https://hooks.example.com/a", true),
        ("http://172.32.0.1/", true), ("http://100.128.0.1/", true),
    ])
    func callbacksIntoTheNetworkAreRefusedAtDispatch(url: String, allowed: Bool) async throws {
        try await TestServer.withApp(WebhookTests.configuration()) { api in
            let token = try await api.adminToken()
            let response = try await api.send(
                .post, "/dispatch", token: token, body: DispatchRequest(coreID: "cb", metadata: ["callback_url": .string(url)]))
            #expect(response.status == (allowed ? .accepted : .badRequest), "\(url): \(response.text)")
            if !allowed {
                #expect(try response.error.details["field"] == "metadata.callback_url")
            }
        }
    }

    /// A name that resolves inward (this machine's own host name, which resolves to a loopback
    /// or private address) passes dispatch and is refused at delivery, without a retry and
    /// without a request; named in `ORCH_CALLBACK_ALLOWED_HOSTS`, the same URL is delivered.
    @Test(arguments: TestBackend.all)
    func aNameThatResolvesInwardIsRefusedAtDeliveryUnlessAllowed(backend: TestBackend) async throws {
        let host = ProcessInfo.processInfo.hostName.lowercased()
        guard case .success(let addresses) = CallbackAddress.resolve(host) else {
            Issue.record("this machine's host name \(host) does not resolve")
            return
        }
        try #require(addresses.allSatisfy(CallbackAddress.isInternal), "\(host) resolves outward: \(addresses)")
        let receiver = CallbackReceiver(statuses: [200])
        try await receiver.start()
        defer { receiver.stop() }
        var refusing = Self.configuration()
        refusing.callbackAllowedHosts = []
        try await TestServer.withApp(refusing, backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, callback: "http://\(host):\(receiver.port)/hook")
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed))
            let events = try await Self.events(api, token, id, until: ["webhook.failed"])
            #expect(events.map(\.eventType) == ["webhook.failed"])
            #expect(events.first?.data["reason"] == "address_refused")
            #expect(events.first?.data["final"] == true)
            #expect(events.first?.data["error"]?.stringValue?.contains("ORCH_CALLBACK_ALLOWED_HOSTS") == true)
            try await Task.sleep(for: .seconds(1.5))
            let later = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events
            #expect(later.filter { $0.eventType.hasPrefix("webhook.") }.count == 1)
            #expect(receiver.received.isEmpty)
        }
        var allowing = Self.configuration()
        allowing.callbackAllowedHosts = [host]
        try await TestServer.withApp(allowing, backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, callback: "http://\(host):\(receiver.port)/hook")
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed))
            #expect(try await Self.events(api, token, id, until: ["webhook.delivered"]).map(\.eventType) == ["webhook.delivered"])
            #expect(receiver.received.count == 1)
        }
    }

    /// A redirect is an answer, not an instruction: it is not followed and counts as a failure.
    @Test func redirectsAreNotFollowed() async throws {
        let receiver = CallbackReceiver(statuses: [307])
        try await receiver.start()
        defer { receiver.stop() }
        try await TestServer.withApp(Self.configuration(retries: [1])) { api in
            let token = try await api.adminToken()
            let id = try await Self.dispatch(api, token, callback: "http://127.0.0.1:\(receiver.port)/hook")
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed))
            let events = try await Self.events(api, token, id, until: ["webhook.failed", "webhook.failed"])
            #expect(events.map(\.eventType) == ["webhook.failed", "webhook.failed"])
            #expect(events.first?.data["status_code"] == 307)
            #expect(receiver.received.count == 2)
        }
    }

    @Test(arguments: TestBackend.all)
    func allowedHostsRestrictCallbacks(backend: TestBackend) async throws {
        var configuration = Self.configuration()
        configuration.callbackAllowedHosts = ["hooks.example.com", "*.internal.example"]
        try await TestServer.withApp(configuration, backend: backend) { api in
            let token = try await api.adminToken()
            for (url, allowed) in [
                ("https://hooks.example.com/a", true), ("http://a.internal.example/b", true),
                ("https://evil.example.com/", false), ("http://internal.example/", false), ("http://127.0.0.1/", false),
            ] {
                let response = try await api.send(
                    .post, "/dispatch", token: token, body: DispatchRequest(coreID: "cb", metadata: ["callback_url": .string(url)]))
                #expect(response.status == (allowed ? .accepted : .badRequest), "\(url)")
            }
        }
    }
}
