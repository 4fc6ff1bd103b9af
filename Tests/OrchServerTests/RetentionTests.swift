import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// Retention (`ORCH_RETENTION`): a pruning pass run with a clock set ahead, on each backend.
@Suite struct RetentionTests {
    static func pruner(_ parts: OrchServerParts, _ policy: String, batchSize: Int = 500) throws -> Pruner {
        var pruner = Pruner(
            store: parts.store, policy: try RetentionPolicy(parsing: policy), interval: .seconds(60), receiptLifetime: 600,
            metrics: parts.metrics, logger: Logger(label: "pruner"))
        pruner.batchSize = batchSize
        return pruner
    }

    @Test(arguments: TestBackend.all)
    func finishedTasksPastTheirRetentionGoWithTheirEventsAndNothingElseDoes(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, parts in
            let token = try await api.adminToken()
            func dispatch(_ core: String = "keep") async throws -> String {
                try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core))
                    .decode(DispatchResponse.self).taskID
            }
            func finish(_ id: String, _ status: TaskStatus) async throws {
                let response = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: status))
                #expect(response.status == .ok)
            }
            var completed: [String] = []
            for _ in 0..<7 {
                let id = try await dispatch()
                try await finish(id, .completed)
                completed.append(id)
            }
            let failed = try await dispatch()
            try await finish(failed, .failed)
            let cancelled = try await dispatch()
            try await finish(cancelled, .cancelled)
            let queued = try await dispatch()
            let running = try await dispatch("busy")
            try await finish(running, .running)
            let scheduled = try await api.request(
                .post, "/dispatch", token: token, json: #"{"core_id":"later","delay":3600}"#
            ).decode(DispatchResponse.self).taskID
            // An event of no task (a lock's).
            _ = try await api.send(.post, "/locks", token: token, body: AcquireLockRequest(resource: "r", owner: "o", ttl: 60))
            let freeEvents = try await parts.store.events(after: 0, through: .max, matching: EventFilter(), limit: 1000)
                .filter { $0.taskID == nil }
            #expect(!freeEvents.isEmpty)

            // Nothing is younger than a minute yet: a pass now deletes nothing.
            let early = try await Self.pruner(parts, "completed=1m,failed=1m,cancelled=1m,events=1m").prune(now: Date())
            #expect(early == PruneCount(tasks: 0, events: 0))

            // Ten minutes on, failed tasks kept forever (0); batches of 3 (1 on SQLite) for 7 completed.
            let pass = try await Self.pruner(parts, "completed=5m,failed=0,cancelled=5m,events=5m", batchSize: 3)
                .prune(now: Date().addingTimeInterval(600))
            #expect(pass.tasks == 8)
            for id in completed + [cancelled] {
                #expect(try await api.request(.get, "/tasks/\(id)", token: token).status == .notFound)
                #expect(try await api.request(.get, "/jobs/\(id)/events", token: token).status == .notFound)
            }
            for id in [failed, queued, running, scheduled] {
                #expect(try await api.request(.get, "/tasks/\(id)", token: token).status == .ok, "\(id)")
            }
            #expect(try await api.request(.get, "/jobs/\(failed)/events", token: token).decode(TaskEventList.self).totalEvents > 0)
            let left = try await api.request(.get, "/tasks", token: token).decode(TaskList.self)
            #expect(left.totalTasks == 4)
            #expect(try await api.request(.get, "/tasks?status=completed", token: token).decode(TaskList.self).totalTasks == 0)
            let keep = try await api.request(.get, "/cores/keep", token: token).decode(CoreInfo.self)
            #expect(keep.queued == 1)
            let stillFree = try await parts.store.events(after: 0, through: .max, matching: EventFilter(), limit: 1000)
                .filter { $0.taskID == nil && $0.sequence <= freeEvents.last!.sequence }
            #expect(stillFree.isEmpty)
            let metrics = try Exposition(String(decoding: parts.metrics.render(), as: UTF8.self))
            #expect(metrics.value("orch_tasks_pruned_total", [:]) == 8)
            #expect((metrics.value("orch_events_pruned_total", [:]) ?? 0) >= Double(8 * 2 + freeEvents.count))
        }
    }

    /// An idempotency key outlives neither its window nor the pruning after it: the same key a
    /// day later makes a new task. Seven keys with batches of four (one task times four) take
    /// the pass two batches (five times four on PostgreSQL: one).
    @Test(arguments: TestBackend.all)
    func expiredIdempotencyKeysArePruned(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, parts in
            let token = try await api.adminToken()
            let body = #"{"core_id":"idem"}"#
            func dispatch(_ key: String) async throws -> String {
                try await api.request(.post, "/dispatch", token: token, json: body, headers: [HTTPField.Name("Idempotency-Key")!: key])
                    .decode(DispatchResponse.self).taskID
            }
            let keys = (0..<7).map { "k-\($0)" }
            var first: [String] = []
            for key in keys { first.append(try await dispatch(key)) }
            #expect(try await dispatch("k-3") == first[3])
            try await Self.pruner(parts, "completed=0,failed=0,cancelled=0,events=0", batchSize: 5)
                .prune(now: Date().addingTimeInterval(25 * 3600))
            for (key, id) in zip(keys, first) {
                #expect(try await dispatch(key) != id, "\(key)")
            }
        }
    }

    @Test(arguments: ["completed", "completed=7", "completed=7y", "done=1d", "events=-1d", "failed=0d"])
    func badRetentionIsRefused(text: String) {
        #expect(throws: RetentionError.self) { try RetentionPolicy(parsing: text) }
    }

    @Test func retentionDefaultsAndOverrides() throws {
        #expect(RetentionPolicy().description == "completed=7d,failed=30d,cancelled=7d,events=30d")
        let policy = try RetentionPolicy(parsing: "completed=90s, events=0")
        #expect(policy.tasks[.completed] == 90 && policy.tasks[.failed] == 30 * 86_400 && policy.events == 0)
    }
}
