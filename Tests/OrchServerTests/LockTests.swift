import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct LockTests {
    static func acquire(
        _ api: APIClient, _ token: String, _ resource: String, owner: String, ttl: Int = 30, priority: Int = 1,
        timeout: Int = 0
    ) async throws -> TestResponse {
        try await api.send(
            .post, "/locks", token: token,
            body: AcquireLockRequest(resource: resource, owner: owner, ttl: ttl, priority: priority, timeout: timeout))
    }

    /// Waits until `count` requests wait for `resource`.
    static func waiting(_ api: APIClient, _ token: String, _ resource: String, count: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let list = try? await api.request(.get, "/locks", token: token).decode(LockList.self)
            if list?.queueStatus.byResource[resource] == count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test(arguments: TestBackend.all)
    func freeLockIsGrantedWithAFencingTokenAndRenewedBySameOwner(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let first = try await Self.acquire(api, token, "critical-resource", owner: "worker-789", ttl: 1800, priority: 3)
            #expect(first.status == .ok)
            let grant = try first.decode(LockGrant.self)
            #expect(grant.status == "acquired" && grant.resource == "critical-resource" && grant.owner == "worker-789")
            #expect((grant.lockID ?? "").hasPrefix("lock-") && (grant.fencingToken ?? 0) >= 1)
            #expect(abs(grant.expiresAt.timeIntervalSince(grant.acquiredAt) - 1800) < 0.01)
            try await Task.sleep(for: .milliseconds(20))
            let renewed = try await Self.acquire(api, token, "critical-resource", owner: "worker-789", ttl: 60).decode(LockGrant.self)
            #expect(renewed.lockID == grant.lockID && renewed.fencingToken == grant.fencingToken)
            #expect(renewed.expiresAt < grant.expiresAt)
            #expect(abs(renewed.expiresAt.timeIntervalSinceNow - 60) < 2)
            let other = try await Self.acquire(api, token, "another", owner: "worker-789").decode(LockGrant.self)
            #expect((other.fencingToken ?? 0) > (grant.fencingToken ?? 0))
        }
    }

    @Test(arguments: TestBackend.all)
    func heldLockIs409WithTheHoldersExpiry(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let grant = try await Self.acquire(api, token, "r", owner: "a").decode(LockGrant.self)
            let refused = try await Self.acquire(api, token, "r", owner: "b")
            #expect(refused.status == .conflict)
            let error = try refused.error
            #expect(error.code == "RESOURCE_LOCKED")
            #expect(error.details["expires_at"] == .string(Timestamp.format(grant.expiresAt)))
        }
    }

    @Test(arguments: [
        (#"{"owner":"o","ttl":5}"#, "MISSING_PARAMETER", "resource"),
        (#"{"resource":"r","ttl":5}"#, "MISSING_PARAMETER", "owner"),
        (#"{"resource":"r","owner":"o"}"#, "MISSING_PARAMETER", "ttl"),
        (#"{"resource":"","owner":"o","ttl":5}"#, "INVALID_PARAMETER", "resource"),
        (#"{"resource":"\#(String(repeating: "r", count: 257))","owner":"o","ttl":5}"#, "INVALID_PARAMETER", "resource"),
        (#"{"resource":"r","owner":"\#(String(repeating: "o", count: 129))","ttl":5}"#, "INVALID_PARAMETER", "owner"),
        (#"{"resource":"r","owner":"o","ttl":0}"#, "INVALID_PARAMETER", "ttl"),
        (#"{"resource":"r","owner":"o","ttl":86401}"#, "INVALID_PARAMETER", "ttl"),
        (#"{"resource":"r","owner":"o","ttl":5,"priority":11}"#, "INVALID_PARAMETER", "priority"),
        (#"{"resource":"r","owner":"o","ttl":5,"timeout":301}"#, "INVALID_PARAMETER", "timeout"),
        (#"{"resource":"r","owner":"o","ttl":1.5}"#, "INVALID_PARAMETER", "ttl"),
    ])
    func invalidAcquireNamesTheField(body: String, code: String, field: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.request(.post, "/locks", token: token, json: body)
                #expect(response.status == .badRequest)
                #expect(try response.error.code == code)
                #expect(try response.error.details["field"] == .string(field))
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func waiterIsGrantedOnReleaseWithoutOverlap(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await Self.acquire(api, token, "handoff", owner: "first")
            async let waiting = Self.acquire(api, token, "handoff", owner: "second", timeout: 10)
            #expect(await Self.waiting(api, token, "handoff", count: 1))
            let release = try await api.request(.delete, "/locks/handoff?owner=first", token: token)
            #expect(release.status == .ok)
            let released = try release.decode(LockRelease.self)
            #expect(released.status == "released" && released.owner == "first")
            let granted = try await waiting
            #expect(granted.status == .ok)
            let grant = try granted.decode(LockGrant.self)
            #expect(grant.owner == "second")
            #expect(grant.acquiredAt >= released.releasedAt)
            let list = try await api.request(.get, "/locks", token: token).decode(LockList.self)
            #expect(list.locks.map(\.owner) == ["second"] && list.queueStatus.totalWaiting == 0)
        }
    }

    /// A refused release (wrong owner, or nothing held) leaves the first waiter first in line:
    /// the grant it was lined up for in the release's transaction did not happen.
    @Test(arguments: TestBackend.all)
    func refusedReleaseKeepsTheWaiterInLine(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await Self.acquire(api, token, "kept", owner: "first")
            async let waiting = Self.acquire(api, token, "kept", owner: "second", timeout: 10)
            #expect(await Self.waiting(api, token, "kept", count: 1))
            let wrongOwner = try await api.request(.delete, "/locks/kept?owner=intruder", token: token)
            #expect(wrongOwner.status == .forbidden)
            #expect(await Self.waiting(api, token, "kept", count: 1))
            let release = try await api.request(.delete, "/locks/kept?owner=first", token: token)
            #expect(release.status == .ok)
            let granted = try await waiting
            #expect(granted.status == .ok)
            #expect(try granted.decode(LockGrant.self).owner == "second")
            let events = try await api.request(.get, "/locks", token: token).decode(LockList.self)
            #expect(events.locks.map(\.owner) == ["second"] && events.queueStatus.totalWaiting == 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func waiterIsGrantedAtExpiry(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let first = try await Self.acquire(api, token, "expiring", owner: "first", ttl: 1).decode(LockGrant.self)
            // Granted (not 408): the expiry handed the lock over well before the 10 s timeout.
            let response = try await Self.acquire(api, token, "expiring", owner: "second", ttl: 30, timeout: 10)
            #expect(response.status == .ok)
            let grant = try response.decode(LockGrant.self)
            #expect(grant.owner == "second")
            #expect(grant.acquiredAt >= first.expiresAt)
            #expect((grant.fencingToken ?? 0) > (first.fencingToken ?? 0))
            let events = try await api.request(.get, "/locks?expired=true", token: token).decode(LockList.self)
            #expect(events.locks.contains { $0.owner == "first" && $0.status == "expired" && $0.remainingTTL == 0 })
        }
    }

    @Test(arguments: TestBackend.all)
    func waitersAreServedByPriorityThenArrival(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await Self.acquire(api, token, "busy", owner: "holder")
            let order = OrderLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, (owner, priority)) in [("low-1", 1), ("high", 9), ("low-2", 1), ("mid", 5)].enumerated() {
                    group.addTask {
                        let response = try await Self.acquire(api, token, "busy", owner: owner, ttl: 30, priority: priority, timeout: 20)
                        #expect(response.status == .ok)
                        order.append(owner)
                        _ = try await api.request(.delete, "/locks/busy?owner=\(owner)", token: token)
                    }
                    // Let each waiter arrive before the next one.
                    #expect(await Self.waiting(api, token, "busy", count: index + 1))
                }
                _ = try await api.request(.delete, "/locks/busy?owner=holder", token: token)
                try await group.waitForAll()
            }
            #expect(order.values == ["high", "mid", "low-1", "low-2"])
        }
    }

    @Test(arguments: TestBackend.all)
    func waitThatRunsOutIs408CloseToTheAskedTime(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await Self.acquire(api, token, "stuck", owner: "holder", ttl: 60)
            let started = ContinuousClock.now
            let response = try await Self.acquire(api, token, "stuck", owner: "impatient", timeout: 2)
            let elapsed = ContinuousClock.now - started
            #expect(response.status == .requestTimeout)
            #expect(try response.error.code == "TIMEOUT")
            // Not before the asked time; the upper bound only says it was not left waiting for good
            // (a loaded machine can add a second or two).
            #expect(elapsed >= .seconds(2) && elapsed < .seconds(6))
            let list = try await api.request(.get, "/locks", token: token).decode(LockList.self)
            #expect(list.queueStatus.totalWaiting == 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func releaseErrorsAndForce(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (_, operatorToken) = try await api.createUser("lock_op", role: .operator, adminToken: admin)
            _ = try await Self.acquire(api, operatorToken, "guarded", owner: "a")
            let notHeld = try await api.request(.delete, "/locks/nothing?owner=a", token: operatorToken)
            #expect(notHeld.status == .notFound)
            #expect(try notHeld.error.code == "RESOURCE_NOT_FOUND")
            let wrongOwner = try await api.request(.delete, "/locks/guarded?owner=b", token: operatorToken)
            #expect(wrongOwner.status == .forbidden)
            let noOwner = try await api.request(.delete, "/locks/guarded", token: operatorToken)
            #expect(noOwner.status == .badRequest)
            #expect(try noOwner.error.details["field"] == "owner")
            let operatorForce = try await api.request(.delete, "/locks/guarded?owner=b&force=true", token: operatorToken)
            #expect(operatorForce.status == .forbidden)
            let adminForce = try await api.request(.delete, "/locks/guarded?owner=b&force=true", token: admin)
            #expect(adminForce.status == .ok)
            #expect(try adminForce.decode(LockRelease.self).owner == "a")
            #expect(try await api.request(.get, "/locks", token: admin).decode(LockList.self).totalLocks == 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func listFiltersAndShowsRemainingTTL(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let acquired = ContinuousClock.now
            _ = try await Self.acquire(api, token, "database-migration", owner: "worker-123", ttl: 3600, priority: 5)
            _ = try await Self.acquire(api, token, "file-processing", owner: "worker-456", ttl: 1800, priority: 2)
            let all = try await api.request(.get, "/locks", token: token).decode(LockList.self)
            #expect(all.totalLocks == 2)
            let migration = try #require(all.locks.first { $0.resource == "database-migration" })
            // Counted down from the grant: at most the seconds since (a loaded machine may take several).
            let elapsed = Int((ContinuousClock.now - acquired).components.seconds) + 1
            #expect(migration.priority == 5 && migration.ttl == 3600 && (3600 - elapsed...3600).contains(migration.remainingTTL))
            #expect(try await api.request(.get, "/locks?owner=worker-456", token: token).decode(LockList.self).locks.map(\.resource) == ["file-processing"])
            #expect(try await api.request(.get, "/locks?resource=database-migration", token: token).decode(LockList.self).totalLocks == 1)
            let health = try await api.request(.get, "/health").decode(HealthReport.self)
            #expect(health.metrics.activeLocks == 2 && health.components["lock_manager"] == .healthy)
        }
    }

    /// 100 acquirers queue on one resource; each holds it briefly. No two grants overlap.
    @Test(arguments: TestBackend.all)
    func concurrentAcquirersNeverHoldTogether(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let intervals = OrderLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let response = try await Self.acquire(api, token, "contended", owner: "client-\(index)", ttl: 30, timeout: 120)
                        #expect(response.status == .ok)
                        let grant = try response.decode(LockGrant.self)
                        let release = try await api.request(.delete, "/locks/contended?owner=client-\(index)", token: token)
                        #expect(release.status == .ok)
                        let released = try release.decode(LockRelease.self)
                        intervals.append("\(grant.acquiredAt.timeIntervalSince1970)|\(released.releasedAt.timeIntervalSince1970)|\(grant.fencingToken ?? 0)")
                    }
                }
                try await group.waitForAll()
            }
            let spans = intervals.values.map { line -> (Double, Double, Int64) in
                let parts = line.split(separator: "|")
                return (Double(parts[0])!, Double(parts[1])!, Int64(parts[2])!)
            }.sorted { $0.2 < $1.2 }
            #expect(spans.count == 100)
            for (previous, next) in zip(spans, spans.dropFirst()) {
                #expect(next.0 >= previous.1, "grant \(next.2) began before \(previous.2) was released")
            }
        }
    }

    /// Held locks and the fencing counter survive a restart.
    @Test(arguments: TestBackend.all)
    func locksAndFencingTokensSurviveARestart(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            let configuration = TestServer.configuration(database: database)
            let before = OrderLog()
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                let grant = try await Self.acquire(api, token, "durable", owner: "keeper", ttl: 600).decode(LockGrant.self)
                before.append("\(grant.fencingToken ?? 0)|\(grant.lockID ?? "")|\(Timestamp.format(grant.expiresAt))")
            }
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                let parts = try #require(before.values.first).split(separator: "|").map(String.init)
                let list = try await api.request(.get, "/locks", token: token).decode(LockList.self)
                #expect(list.locks.map(\.lockID) == [parts[1]])
                #expect(list.locks.first.map { Timestamp.format($0.expiresAt) } == parts[2])
                #expect(try await Self.acquire(api, token, "durable", owner: "thief").status == .conflict)
                let next = try await Self.acquire(api, token, "fresh", owner: "keeper").decode(LockGrant.self)
                #expect((next.fencingToken ?? 0) > Int64(parts[0])!)
            }
        }
    }

    /// A waiting client that hangs up leaves the queue at once, over a real socket.
    @Test(arguments: TestBackend.all)
    func waiterThatDisconnectsLeavesTheQueue(backend: TestBackend) async throws {
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            _ = try await Self.acquire(api, token, "held", owner: "holder", ttl: 60)
            let body = #"{"resource":"held","owner":"leaver","ttl":30,"timeout":60}"#
            let waiter = try StalledSocket(
                port: port,
                rawRequest: "POST /locks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(await Self.waiting(api, token, "held", count: 1))
            waiter.disconnect()
            let deadline = ContinuousClock.now + .seconds(5)
            var status = try await api.request(.get, "/locks", token: token).decode(LockList.self).queueStatus
            while status.totalWaiting > 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                status = try await api.request(.get, "/locks", token: token).decode(LockList.self).queueStatus
            }
            #expect(status.totalWaiting == 0 && status.byResource.isEmpty)
            // The holder's release then finds nobody to hand the lock to.
            _ = try await api.request(.delete, "/locks/held?owner=holder", token: token)
            #expect(try await api.request(.get, "/locks", token: token).decode(LockList.self).totalLocks == 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func lockEventsReachTheStream(backend: TestBackend) async throws {
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, query: "filter=lock.*", headers: [("Authorization", "Bearer \(token)")])
            _ = try await Self.acquire(api, token, "watched", owner: "w", ttl: 1)
            #expect(await stream.waitUntil { $0.compactMap(\.eventType) == ["lock.acquired", "lock.expired"] })
            _ = try await Self.acquire(api, token, "watched", owner: "w")
            _ = try await api.request(.delete, "/locks/watched?owner=w", token: token)
            #expect(await stream.waitUntil { $0.compactMap(\.eventType) == ["lock.acquired", "lock.expired", "lock.acquired", "lock.released"] })
            stream.close()
        }
    }
}

/// A thread-safe list of strings, for collecting results from concurrent tasks.
final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ item: String) { lock.withLock { items.append(item) } }
    var values: [String] { lock.withLock { items } }
    var count: Int { values.count }
}
