import Foundation
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// The task rollup behind `GET /stats/tasks` and the dashboard's charts.
@Suite struct TaskStatsTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_030)

    @Test func minutesCountOutcomesAndTheirPercentile() {
        let rollup = TaskRollup()
        // 19 tasks of about 0.2 s and one of 40 s in one minute; a failure in the minute before.
        for _ in 0..<19 { rollup.add(coreID: "a", status: .completed, duration: 0.2, at: Self.now) }
        rollup.add(coreID: "a", status: .completed, duration: 40, at: Self.now)
        rollup.add(coreID: "b", status: .failed, duration: 2, at: Self.now.addingTimeInterval(-60))
        let all = rollup.snapshot(coreID: nil, now: Self.now)
        #expect(all.minutes.count == 60)
        #expect(all.completed == 20 && all.failed == 1)
        #expect(all.minutes.last?.completed == 20 && all.minutes.last?.p95Seconds == 0.25)
        #expect(all.minutes[58].failed == 1 && all.minutes[58].p95Seconds == 2)
        #expect(all.minutes.last?.minute == Date(timeIntervalSince1970: 1_800_000_000))
        // Over the hour the 95th percentile of 21 run times is the 20th: the failure's 2 s,
        // in the bucket up to 2.5 s.
        #expect(all.p95Seconds == 2.5)
        let b = rollup.snapshot(coreID: "b", now: Self.now)
        #expect(b.completed == 0 && b.failed == 1 && b.p95Seconds == 2)
        // The open-ended last bucket answers the longest run time.
        let slow = TaskRollup()
        slow.add(coreID: "a", status: .completed, duration: 4000, at: Self.now)
        #expect(slow.snapshot(coreID: nil, now: Self.now).p95Seconds == 4000)
    }

    @Test func theWindowIsTheLastHour() {
        let rollup = TaskRollup()
        rollup.add(coreID: "a", status: .completed, duration: 1, at: Self.now.addingTimeInterval(-7200))
        rollup.add(coreID: "a", status: .completed, duration: 1, at: Self.now.addingTimeInterval(-3000))
        #expect(rollup.snapshot(coreID: nil, now: Self.now).completed == 1)
        // An hour later that one is gone too; filling more minutes than the window forgets the oldest.
        for minute in 0..<70 {
            rollup.add(coreID: "a", status: .failed, duration: nil, at: Self.now.addingTimeInterval(Double(minute * 60)))
        }
        let later = rollup.snapshot(coreID: nil, now: Self.now.addingTimeInterval(69 * 60))
        #expect(later.completed == 0 && later.failed == 60 && later.p95Seconds == nil)
    }

    /// Through the API on each backend; a restarted server finds the hour before in the store
    /// and counts it once.
    @Test(arguments: TestBackend.all)
    func statsCountFinishedTasksAndSurviveARestart(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            let configuration = TestServer.configuration(database: database)
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                for (core, outcome) in [("s1", TaskStatus.completed), ("s1", .completed), ("s2", .failed), ("s2", .cancelled)] {
                    let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core))
                        .decode(DispatchResponse.self).taskID
                    _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .running))
                    let done = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: outcome))
                    #expect(done.status == .ok)
                }
                let stats = try await Self.stats(api, token, "")
                #expect(stats.completed == 2 && stats.failed == 1)
                #expect(stats.p95Seconds != nil)
                #expect(try await Self.stats(api, token, "?core_id=s2").failed == 1)
                #expect(try await Self.stats(api, token, "?core_id=s2").completed == 0)
                #expect(try await api.request(.get, "/stats/tasks").status == .unauthorized)
            }
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try await api.adminToken()
                let stats = try await Self.stats(api, token, "")
                #expect(stats.completed == 2 && stats.failed == 1)
                #expect(stats.minutes.reduce(0) { $0 + $1.completed } == 2)
            }
        }
    }

    static func stats(_ api: APIClient, _ token: String, _ query: String) async throws -> TaskStats {
        let response = try await api.request(.get, "/stats/tasks\(query)", token: token)
        #expect(response.status == .ok)
        return try response.decode(TaskStats.self)
    }
}

/// `GET /alerts`: what the monitor raised and has not resolved.
@Suite struct AlertBoardTests {
    @Test(arguments: TestBackend.all)
    func firingAlertsUntilResolved(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, parts in
            let token = try await api.adminToken()
            let alerts = SystemAlerts(store: parts.store, bus: parts.bus)
            func open() async throws -> [TaskEvent] {
                try await api.request(.get, "/alerts", token: token).decode(AlertList.self).alerts
            }
            #expect(try await open().isEmpty)
            try await alerts.raise(.warning, "deep", data: ["alert": "queue_depth", "state": "firing", "core_id": "a"])
            try await alerts.raise(.warning, "deep too", data: ["alert": "queue_depth", "state": "firing", "core_id": "b"])
            try await alerts.raise(.critical, "slow", data: ["alert": "db_latency", "state": "firing"])
            try await alerts.raise(.info, "fine", data: ["alert": "queue_depth", "state": "resolved", "core_id": "a"])
            var firing: [TaskEvent] = []
            for _ in 0..<100 {
                firing = try await open()
                if firing.count == 2 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(firing.map { $0.data["message"] } == ["slow", "deep too"])
            #expect(firing.allSatisfy { $0.eventType == "system.alert" })
        }
    }
}
