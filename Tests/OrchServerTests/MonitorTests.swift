import Foundation
import HummingbirdTesting
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct MonitorTests {
    static func sample(depth: Int, age: Double = 0, latency: Double? = 0.001, lockWait: Double = 0) -> SystemSample {
        let now = Date()
        return SystemSample(
            takenAt: now,
            queues: depth > 0 ? [CoreQueueSummary(coreID: "core_a", depth: depth, oldestReadyAt: now.addingTimeInterval(-age))] : [],
            runningTasks: 0, heldLocks: 0, lockWaiters: lockWait > 0 ? 1 : 0, longestLockWait: lockWait,
            databaseLatency: latency, process: ProcessStats(residentBytes: 10_000_000))
    }

    @Test func aConditionFiresOnceAndResolvesOnce() {
        var thresholds = AlertThresholds()
        thresholds.queueDepth = 10
        thresholds.queueAge = 60
        var rules = AlertRules(thresholds: thresholds)
        #expect(rules.evaluate(Self.sample(depth: 5)).firing.isEmpty)
        let crossed = rules.evaluate(Self.sample(depth: 11))
        #expect(crossed.firing.map(\.key) == ["queue_depth:core_a"] && crossed.resolved.isEmpty)
        #expect(crossed.firing.first?.value == 11 && crossed.firing.first?.threshold == 10)
        #expect(rules.evaluate(Self.sample(depth: 50)).firing.isEmpty)
        let both = rules.evaluate(Self.sample(depth: 50, age: 120, lockWait: 90))
        #expect(both.firing.map(\.key) == ["lock_wait", "queue_age:core_a"])
        let cleared = rules.evaluate(Self.sample(depth: 3))
        #expect(cleared.resolved.map(\.key) == ["lock_wait", "queue_age:core_a", "queue_depth:core_a"])
        #expect(rules.evaluate(Self.sample(depth: 3)) == ([], []))
        #expect(rules.evaluate(Self.sample(depth: 0, latency: nil)).firing.map(\.key) == ["database"])
    }

    @Test func zeroTurnsAThresholdOff() {
        var thresholds = AlertThresholds()
        thresholds.queueDepth = 0
        var rules = AlertRules(thresholds: thresholds)
        #expect(rules.evaluate(Self.sample(depth: 1_000_000)).firing.isEmpty)
    }

    @Test func thresholdsParse() throws {
        let parsed = try AlertThresholds(parsing: "queue_depth=5, lock_wait=2.5,memory_mb=0")
        #expect(parsed.queueDepth == 5 && parsed.lockWait == 2.5 && parsed.memoryMegabytes == 0 && parsed.queueAge == 300)
        #expect(try AlertThresholds(parsing: parsed.description) == parsed)
        for bad in ["queue_depth", "nope=1", "queue_depth=-1", "queue_age=abc"] {
            #expect(throws: ConfigurationError.self) { try AlertThresholds(parsing: bad) }
        }
    }

    @Test func heartbeatGoesStaleAfterThreeMissedIntervals() {
        let start = ContinuousClock.now
        let heartbeat = MonitorHeartbeat(interval: .seconds(10), now: start)
        #expect(heartbeat.isHealthy(now: start + .seconds(29)))
        #expect(!heartbeat.isHealthy(now: start + .seconds(31)))
        heartbeat.record(start + .seconds(31))
        #expect(heartbeat.isHealthy(now: start + .seconds(40)))
    }

    /// A live server with a 1 s monitor: three queued tasks on a core cross `queue_depth=2`,
    /// a `system.alert` is stored and streamed; cancelling two clears it with a resolved alert.
    @Test(arguments: TestBackend.all)
    func alertsAreRaisedWhenCrossedAndWhenCleared(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.monitorInterval = 1
        configuration.alertThresholds = try AlertThresholds(parsing: "queue_depth=2")
        try await TestServer.withServer(configuration, backend: backend) { api, parts in
            let token = try await api.adminToken()
            var ids: [String] = []
            for _ in 0..<3 {
                ids.append(
                    try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "ALERT_CORE"))
                        .decode(DispatchResponse.self).taskID)
            }
            let firing = try #require(await Self.waitForAlert(parts.store, state: "firing"))
            #expect(firing.data["level"] == "warning")
            #expect(firing.data["alert"] == "queue_depth" && firing.data["core_id"] == "ALERT_CORE")
            #expect(firing.data["value"]?.doubleValue == 3 && firing.data["threshold"]?.doubleValue == 2)
            #expect(firing.data["message"]?.stringValue?.contains("ALERT_CORE") == true)

            for id in ids.prefix(2) {
                #expect(try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .cancelled)).status == .ok)
            }
            let resolved = try #require(await Self.waitForAlert(parts.store, state: "resolved"))
            #expect(resolved.data["level"] == "info" && resolved.data["alert"] == "queue_depth")
            #expect(resolved.sequence > firing.sequence)
            // Raised once each, not on every sample.
            try await Task.sleep(for: .milliseconds(1500))
            let all = try await parts.store.events(
                after: 0, through: .max, matching: EventFilter(filter: "system.alert"), limit: 100)
            #expect(all.filter { $0.data["alert"] == "queue_depth" }.count == 2)

            let health = try await api.request(.get, "/health")
            #expect(try health.decode(HealthReport.self).components["monitor"] == .healthy)
        }
    }

    static func waitForAlert(_ store: any Store, state: String) async -> EventRecord? {
        for _ in 0..<100 {
            let alerts = (try? await store.events(
                after: 0, through: .max, matching: EventFilter(filter: "system.alert"), limit: 100)) ?? []
            // Only the queue alert: a loaded test machine may also raise db_latency.
            if let alert = alerts.first(where: { $0.data["state"]?.stringValue == state && $0.data["alert"] == "queue_depth" }) {
                return alert
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}
