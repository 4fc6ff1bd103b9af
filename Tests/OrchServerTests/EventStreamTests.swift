import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// `/sse/events` over real sockets.
@Suite struct EventStreamTests {
    /// Runs `body` against a live server (real socket) with its port and parts.
    static func withLiveServer(
        _ configuration: ServerConfiguration = TestServer.configuration(), backend: TestBackend = .sqlite,
        store: (any Store)? = nil, _ body: @escaping @Sendable (APIClient, Int, OrchServerParts) async throws -> Void
    ) async throws {
        try await TestServer.withServer(configuration, backend: backend, store: store, testing: .live) { api, parts in
            try await body(api, try #require(api.client.port), parts)
        }
    }

    static func dispatch(_ api: APIClient, _ token: String, core: String = "sse") async throws -> String {
        try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core)).decode(DispatchResponse.self).taskID
    }

    @Test(arguments: TestBackend.all)
    func headersFrameFormatAndADispatchSeenLive(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            #expect(stream.status == 200)
            #expect(stream.headers["Content-Type"].first == "text/event-stream")
            #expect(stream.headers["Cache-Control"].first == "no-cache")
            #expect(stream.headers["X-Accel-Buffering"].first == "no")
            #expect(await stream.waitUntil { $0.first?.field("retry") != nil })
            let taskID = try await Self.dispatch(api, token)
            #expect(await stream.waitUntil { $0.contains { $0.eventType == "task.created" } })
            let frame = try #require(stream.events.first { $0.eventType == "task.created" })
            let json = try #require(frame.json)
            #expect(json["task_id"] as? String == taskID)
            #expect(json["event_id"] as? String == "event-\(frame.id ?? "")")
            #expect(json["timestamp"] is String)
            #expect((json["data"] as? [String: Any])?["core_id"] as? String == "sse")
            #expect(Set(json.keys) == ["event_type", "task_id", "timestamp", "data", "event_id"])
            #expect(!stream.raw.contains("\nevent:") && !stream.raw.hasPrefix("event:"))
            #expect(frame.lines.count == 2)
            stream.close()
        }
    }

    @Test(arguments: TestBackend.all)
    func filtersByTypePrefixTaskAndCore(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let auth = [("Authorization", "Bearer \(token)")]
            let watched = try await Self.dispatch(api, token, core: "alpha")
            let byType = try await SSEConnection.open(port: port, query: "filter=task.progress,task.completed", headers: auth)
            let byPrefix = try await SSEConnection.open(port: port, query: "filter=task.*", headers: auth)
            let byTask = try await SSEConnection.open(port: port, query: "task_id=\(watched)", headers: auth)
            let byCore = try await SSEConnection.open(port: port, query: "core_id=beta", headers: auth)
            let other = try await Self.dispatch(api, token, core: "beta")
            for id in [watched, other] {
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .running, progress: 10))
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed))
            }
            // 1 created + 3 per task (started, progress, completed) for 2 tasks = 7 task events.
            #expect(await byPrefix.waitUntil { $0.filter { $0.id != nil }.count == 7 })
            #expect(await byType.waitUntil { $0.filter { $0.id != nil }.count == 4 })
            #expect(await byTask.waitUntil { $0.filter { $0.id != nil }.count == 3 })
            #expect(await byCore.waitUntil { $0.filter { $0.id != nil }.count == 4 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(Set(byType.events.compactMap(\.eventType)) == ["task.progress", "task.completed"])
            #expect(byTask.events.allSatisfy { $0.json?["task_id"] as? String == watched })
            #expect(byCore.events.allSatisfy { $0.json?["task_id"] as? String == other })
            #expect(byPrefix.events.count == 7 && byType.events.count == 4 && byTask.events.count == 3 && byCore.events.count == 4)
            for stream in [byType, byPrefix, byTask, byCore] { stream.close() }
        }
    }

    @Test(arguments: TestBackend.all)
    func accessTokenQueryWorksOnThisRouteOnly(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, query: "access_token=\(token)")
            #expect(stream.status == 200)
            _ = try await Self.dispatch(api, token)
            #expect(await stream.waitUntil { $0.contains { $0.eventType == "task.created" } })
            stream.close()
            let forged = try await SSEConnection.open(port: port, query: "access_token=not.a.token")
            #expect(forged.status == 401)
            let elsewhere = try await api.request(.get, "/tasks?access_token=\(token)")
            #expect(elsewhere.status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.all)
    func missingTokenAndDeactivatedUserAreRefused(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, _ in
            let admin = try await api.adminToken()
            let none = try await SSEConnection.open(port: port)
            #expect(none.status == 401)
            let (user, token) = try await api.createUser("streamer", role: .viewer, adminToken: admin)
            let open = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            #expect(open.status == 200)
            _ = try await api.send(.patch, "/users/\(user.userID)", token: admin, body: UpdateUserRequest(isActive: false))
            #expect(await open.waitForEnd(timeout: .seconds(5)), "the open stream of a deactivated user is closed")
            let again = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            #expect(again.status == 401)
        }
    }

    @Test(arguments: TestBackend.all)
    func streamClosesWhenItsTokenExpires(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.tokenTTL = 4
        try await Self.withLiveServer(configuration, backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            #expect(stream.status == 200)
            #expect(await stream.waitForEnd(timeout: .seconds(8)))
        }
    }

    @Test(arguments: TestBackend.all)
    func heartbeatComesAtTheConfiguredIntervalWithoutAnID(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.sseHeartbeat = 1
        try await Self.withLiveServer(configuration, backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            // A generous wait: a loaded machine (browsers of other tests starting) delays frames.
            #expect(await stream.waitUntil(timeout: .seconds(15)) { $0.filter { $0.eventType == "heartbeat" }.count >= 2 })
            let heartbeat = try #require(stream.frames.first { $0.eventType == "heartbeat" })
            #expect(heartbeat.id == nil)
            stream.close()
        }
    }

    @Test(arguments: TestBackend.all)
    func systemAlertsReachTheStream(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, parts in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, query: "filter=system.alert", headers: [("Authorization", "Bearer \(token)")])
            try await parts.alerts.raise(.warning, "High CPU usage detected")
            _ = try await Self.dispatch(api, token)
            #expect(await stream.waitUntil { !$0.filter { $0.id != nil }.isEmpty })
            let alert = try #require(stream.events.first?.json)
            #expect(alert["event_type"] as? String == "system.alert")
            #expect((alert["data"] as? [String: Any])?["level"] as? String == "warning")
            #expect((alert["data"] as? [String: Any])?["message"] as? String == "High CPU usage detected")
            try await Task.sleep(for: .milliseconds(200))
            #expect(stream.events.count == 1)
            stream.close()
        }
    }

    /// Disconnect, let events happen, resume with Last-Event-ID: exactly the missed ones arrive,
    /// then the stream goes on live.
    @Test(arguments: TestBackend.all)
    func resumeAfterADisconnectYieldsExactlyTheMissedEvents(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let auth = ("Authorization", "Bearer \(token)")
            let first = try await SSEConnection.open(port: port, headers: [auth])
            for _ in 0..<3 { _ = try await Self.dispatch(api, token) }
            #expect(await first.waitUntil { $0.filter { $0.id != nil }.count == 3 })
            let lastSeen = try #require(first.events.last?.id)
            first.close()
            var missed: [String] = []
            for _ in 0..<5 { missed.append(try await Self.dispatch(api, token)) }
            let resumed = try await SSEConnection.open(port: port, headers: [auth, ("Last-Event-ID", lastSeen)])
            #expect(await resumed.waitUntil { $0.filter { $0.id != nil }.count == 5 })
            #expect(resumed.events.compactMap { $0.json?["task_id"] as? String } == missed)
            let live = try await Self.dispatch(api, token)
            #expect(await resumed.waitUntil { $0.filter { $0.id != nil }.count == 6 })
            #expect(resumed.events.last?.json?["task_id"] as? String == live)
            let ids = resumed.events.compactMap { $0.id.flatMap { Int64($0) } }
            #expect(ids == Array((Int64(lastSeen)! + 1)...(Int64(lastSeen)! + 6)))
            // The query form resumes the same way.
            let byQuery = try await SSEConnection.open(port: port, query: "last_event_id=event-\(lastSeen)", headers: [auth])
            #expect(await byQuery.waitUntil { $0.filter { $0.id != nil }.count == 6 })
            resumed.close()
            byQuery.close()
        }
    }

    /// Events are written without pause while a client resumes from an old id: what it
    /// receives is every sequence number after that id exactly once, in order.
    @Test(arguments: TestBackend.all)
    func resumeRacingWithLiveWritesHasNoGapAndNoDuplicate(backend: TestBackend) async throws {
        try await Self.withLiveServer(backend: backend) { api, port, parts in
            let token = try await api.adminToken()
            for _ in 0..<50 { _ = try await Self.dispatch(api, token) }
            let resumeFrom = try await parts.store.lastEventSequence() - 30
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 {
                        group.addTask { for _ in 0..<50 { _ = try await Self.dispatch(api, token) } }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .milliseconds(20))
            let stream = try await SSEConnection.open(
                port: port, headers: [("Authorization", "Bearer \(token)"), ("Last-Event-ID", String(resumeFrom))])
            try await writers.value
            let last = try await parts.store.lastEventSequence()
            #expect(await stream.waitUntil { $0.last?.id == String(last) })
            let ids = stream.events.compactMap { $0.id.flatMap { Int64($0) } }
            #expect(ids == Array((resumeFrom + 1)...last))
            stream.close()
        }
    }

    /// After a restart nothing is in memory: the replay comes from the store.
    @Test(arguments: TestBackend.all)
    func resumeAfterARestartReplaysFromTheStore(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            let configuration = TestServer.configuration(database: database)
            try await Self.withLiveServer(configuration, backend: backend) { api, _, _ in
                let token = try await api.adminToken()
                for core in ["a", "b", "a", "b"] { _ = try await Self.dispatch(api, token, core: core) }
            }
            try await Self.withLiveServer(configuration, backend: backend) { api, port, _ in
                let token = try await api.adminToken()
                let stream = try await SSEConnection.open(
                    port: port, query: "core_id=a", headers: [("Authorization", "Bearer \(token)"), ("Last-Event-ID", "0")])
                #expect(await stream.waitUntil { $0.filter { $0.id != nil }.count == 2 })
                try await Task.sleep(for: .milliseconds(200))
                #expect(stream.events.map(\.id) == ["1", "3"])
                stream.close()
            }
        }
    }

    /// A client that stops reading is cut once its buffer is full; another stream keeps
    /// receiving everything.
    @Test(arguments: TestBackend.all)
    func stalledSubscriberIsDroppedWhileAnotherKeepsReceiving(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.sseBufferSize = 256
        try await Self.withLiveServer(configuration, backend: backend) { api, port, parts in
            let token = try await api.adminToken()
            let healthy = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            let stalled = try StalledSocket(port: port, path: "/sse/events", token: token)
            #expect(await waitFor { parts.bus.subscriptionCount == 2 })
            // Steady batches far smaller than the buffer: a reading client keeps up, the stalled
            // one falls behind by more than the buffer once the kernel's socket buffers (up to
            // 4 MiB here) are full. 2500 events of 4 KiB are 10 MiB.
            let total = 2500
            for batch in 0..<(total / 50) {
                let drafts = (0..<50).map { index in
                    EventDraft(type: .systemAlert, timestamp: Date(), data: ["message": .string(String(repeating: "x", count: 4096)), "n": .int(Int64(batch * 50 + index))])
                }
                parts.bus.publish(try await parts.store.appendEvents(drafts, taskID: nil, coreID: nil))
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await waitFor { parts.bus.subscriptionCount == 1 }, "the stalled stream is dropped")
            #expect(await healthy.waitUntil(timeout: .seconds(30)) { $0.filter { $0.id != nil }.count == total })
            #expect(stalled.readsToEndOfStream(), "the server closed the stalled connection")
            healthy.close()
        }
    }
}

/// Polls `condition` for up to `timeout`.
func waitFor(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
