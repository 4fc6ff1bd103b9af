import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchClient
import OrchModels
import Synchronization
import OrchTestSupport
import Testing

@testable import OrchServer

/// The Swift client library against a live server over real sockets.
@Suite struct OrchClientLibraryTests {
    static func withClient(
        _ configuration: ServerConfiguration = TestServer.configuration(), backend: TestBackend = .sqlite,
        _ body: @escaping @Sendable (OrchClient, OrchServerParts, APIClient) async throws -> Void
    ) async throws {
        try await EventStreamTests.withLiveServer(configuration, backend: backend) { api, port, parts in
            let client = OrchClient(baseURL: "http://127.0.0.1:\(port)/")
            try await client.login(username: "admin", password: TestServer.adminPassword)
            try await body(client, parts, api)
        }
    }

    @Test(arguments: TestBackend.all)
    func everyCallAgainstALiveServer(backend: TestBackend) async throws {
        try await Self.withClient(backend: backend) { client, _, _ in
            #expect(try await client.me().username == "admin")
            #expect(try await client.health().status == .healthy)
            #expect(try await client.metricsText().contains("orch_http_requests_total"))

            let first = try await client.dispatch(DispatchRequest(coreID: "lib", priority: 3), idempotencyKey: "k-1")
            let again = try await client.dispatch(DispatchRequest(coreID: "lib", priority: 3), idempotencyKey: "k-1")
            #expect(first.taskID == again.taskID)
            #expect(try await client.tasks(coreID: "lib").totalTasks == 1)
            #expect(try await client.task(id: first.taskID).priority == 3)

            let claimed = try await client.claim(core: "lib", ClaimRequest(workerID: "w1", wait: 1, lease: 30))
            let lease = try #require(claimed.first?.leaseToken)
            #expect(try await client.claim(core: "lib", ClaimRequest(workerID: "w1", wait: 0)).isEmpty)
            let beat = try await client.heartbeat(taskID: first.taskID, HeartbeatRequest(workerID: "w1", leaseToken: lease))
            #expect(beat.status == .running && !beat.cancelRequested)
            try await client.updateStatus(
                taskID: first.taskID, StatusUpdateRequest(status: .completed, result: ["ok": true], leaseToken: lease))
            let events = try await client.taskEvents(taskID: first.taskID)
            #expect(events.events.map(\.eventType) == ["task.created", "task.started", "task.completed"])

            let grant = try await client.acquireLock(AcquireLockRequest(resource: "lib-lock", owner: "me", ttl: 30))
            #expect(grant.status == "acquired")
            #expect(try await client.locks().totalLocks == 1)
            #expect(try await client.releaseLock(resource: "lib-lock", owner: "me").status == "released")

            let user = try await client.createUser(
                CreateUserRequest(username: "libuser", email: "lib@example.com", password: "password-lib", role: .viewer))
            #expect(try await client.user(id: user.userID).username == "libuser")
            #expect(try await client.users(role: .viewer).totalUsers == 1)
            #expect(try await client.updateUser(id: user.userID, UpdateUserRequest(role: .operator)).role == .operator)

            let token = try await client.createAPIToken(CreateAPITokenRequest(name: "lib-machine", role: .viewer))
            let machine = OrchClient(baseURL: client.baseURL, token: token.token)
            #expect(try await machine.tasks().totalTasks == 1)
            #expect(try await client.apiTokens().totalTokens == 1)
            try await client.revokeAPIToken(id: token.apiToken.tokenID)
            await #expect(throws: OrchClientError.self) { try await machine.tasks() }
        }
    }

    @Test(arguments: TestBackend.all)
    func errorsCarryTheEnvelope(backend: TestBackend) async throws {
        try await Self.withClient(backend: backend) { client, _, _ in
            do {
                _ = try await client.task(id: "task-missing")
                Issue.record("expected an error")
            } catch let error as OrchClientError {
                #expect(error.status == 404 && error.code == "RESOURCE_NOT_FOUND")
                #expect(error.requestID?.hasPrefix("req-") == true && !error.message.isEmpty)
            }
            do {
                _ = try await client.dispatch(DispatchRequest(coreID: "lib", priority: 11))
                Issue.record("expected an error")
            } catch let error as OrchClientError {
                #expect(error.status == 400 && error.code == "INVALID_PARAMETER")
                #expect(error.body?.details["field"] == "priority")
            }
            let anonymous = OrchClient(baseURL: client.baseURL)
            await #expect(throws: OrchClientError.self) { try await anonymous.me() }
        }
    }

    @Test(arguments: TestBackend.all)
    func rateLimitedCallsExposeRetryAfter(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.rateLimits = ServerConfiguration.defaultRateLimits.merging(["admin": 3, "anonymous": 1000]) { $1 }
        try await Self.withClient(configuration, backend: backend) { client, _, _ in
            var refused: OrchClientError?
            for _ in 0..<10 where refused == nil {
                do { _ = try await client.tasks() } catch let error as OrchClientError { refused = error }
            }
            let error = try #require(refused)
            #expect(error.status == 429 && error.code == "RATE_LIMIT_EXCEEDED")
            #expect((1...20).contains(error.retryAfter ?? 0))
        }
    }

    /// Events written while the stream is cut from the server's side arrive after the client
    /// reconnects with Last-Event-ID: every event once, in order.
    @Test(arguments: TestBackend.all)
    func eventStreamSurvivesDisconnectsWithoutLossOrDuplicates(backend: TestBackend) async throws {
        try await Self.withClient(backend: backend) { client, parts, _ in
            let seen = Mutex<[TaskEvent]>([])
            let reader = Task {
                for try await event in client.events(filter: "task.created", reconnectDelay: .milliseconds(100)) {
                    seen.withLock { $0.append(event) }
                    if seen.withLock({ $0.count }) == 30 { return }
                }
            }
            var dispatched: [String] = []
            for round in 0..<3 {
                // Wait until the stream is connected before writing (the first round).
                if round == 0 {
                    for _ in 0..<100 where parts.bus.allSubscriptions().isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                }
                for _ in 0..<10 {
                    dispatched.append(try await client.dispatch(DispatchRequest(coreID: "sse-lib")).taskID)
                }
                // Cut every stream from the server's side.
                parts.bus.closeSubscriptions(.overflow) { _ in true }
            }
            let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await reader.value
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(15))
                    return false
                }
                defer { group.cancelAll() }
                return try await group.next() ?? false
            }
            reader.cancel()
            #expect(finished)
            let received = seen.withLock { $0 }
            #expect(received.compactMap(\.taskID) == dispatched)
            let sequences = received.compactMap(\.sequence)
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
        }
    }

    @Test(arguments: TestBackend.all)
    func withLockReleasesOnThrowAndRenewsPastTheTTL(backend: TestBackend) async throws {
        try await Self.withClient(backend: backend) { client, _, _ in
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await client.withLock(resource: "wl", owner: "me", ttl: 5) { _ in throw Boom() }
            }
            #expect(try await client.locks(resource: "wl").totalLocks == 0)

            // Held for 10 s with a 5 s TTL (renewed every 1.7 s, so that a renewal held up on a
            // loaded machine does not let it lapse): renewals keep it ours; another owner is refused.
            let other = OrchClient(baseURL: client.baseURL, token: client.token)
            let value = try await client.withLock(resource: "wl", owner: "me", ttl: 5) { grant in
                try await Task.sleep(for: .milliseconds(10_000))
                let held = try await other.locks(resource: "wl").locks.first
                #expect(held?.owner == "me" && held?.lockID == grant.lockID)
                await #expect(throws: OrchClientError.self) {
                    _ = try await other.acquireLock(AcquireLockRequest(resource: "wl", owner: "thief", ttl: 5))
                }
                return 42
            }
            #expect(value == 42)
            #expect(try await client.locks(resource: "wl").totalLocks == 0)
        }
    }
}
