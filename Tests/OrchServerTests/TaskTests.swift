import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct TaskTests {
    /// The reference's Python SDK usage example, as the same calls in the same order: dispatch
    /// with priority 2 and metadata, update to running with progress 50 and a message, read
    /// the events.
    @Test(arguments: TestBackend.all)
    func referencePythonSDKUsageExample(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let dispatch = try await api.request(
                .post, "/dispatch", token: token,
                json: #"{"coreId":"WORK_AI_01","stay":false,"priority":2,"timeout":300,"metadata":{"source":"python_sdk","batch_id":"batch_123"}}"#)
            #expect(dispatch.status == .accepted)
            let task = try dispatch.decode(DispatchResponse.self)
            #expect(task.taskID.hasPrefix("task-") && task.status == .queued && task.coreID == "WORK_AI_01")
            #expect(task.priority == 2 && task.timeout == 300 && task.queuePosition == 1)

            let update = try await api.request(
                .put, "/jobs/\(task.taskID)/status", token: token,
                json: #"{"status":"running","progress":50,"message":"Processing batch data"}"#)
            #expect(update.status == .ok)
            let updated = try update.decode(StatusUpdateResponse.self)
            #expect(updated.status == "updated" && updated.taskID == task.taskID && updated.eventID.hasPrefix("event-"))

            let events = try await api.request(.get, "/jobs/\(task.taskID)/events", token: token)
            #expect(events.status == .ok)
            let list = try events.decode(TaskEventList.self)
            #expect(list.events.map(\.eventType) == ["task.created", "task.started", "task.progress"])
            #expect(list.totalEvents == 3)
            #expect(list.events.last?.eventID == updated.eventID)
            #expect(list.events[2].data["progress"] == 50)
            #expect(list.events[2].data["message"] == "Processing batch data")
            #expect(list.pagination == Pagination(limit: 100, offset: 0, hasMore: false))
        }
    }

    @Test(arguments: TestBackend.all)
    func dispatchAcceptsCoreIDSpellingAndAppliesDefaults(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let response = try await api.request(.post, "/dispatch", token: token, json: #"{"core_id":"alt.core:1"}"#)
            #expect(response.status == .accepted)
            let dispatched = try response.decode(DispatchResponse.self)
            let task = try await api.request(.get, "/tasks/\(dispatched.taskID)", token: token).decode(OrchTask.self)
            #expect(task.coreID == "alt.core:1" && task.priority == 1 && task.timeout == 300)
            #expect(task.stay == false && task.maxAttempts == 3 && task.attempts == 0 && task.metadata == [:])
            #expect(task.startedAt == nil && task.result == nil && task.error == nil && task.workerID == nil)
            #expect(try await api.request(.get, "/tasks/task-nope", token: token).status == .notFound)
            #expect(try await api.request(.get, "/jobs/task-nope/events", token: token).status == .notFound)
        }
    }

    /// Invalid `POST /dispatch` bodies, with the error code and the field it names.
    static let invalidDispatches: [(String, String, String)] = [
        (#"{}"#, "MISSING_PARAMETER", "coreId"),
        (#"{"coreId":""}"#, "INVALID_PARAMETER", "coreId"),
        (#"{"coreId":"has space"}"#, "INVALID_PARAMETER", "coreId"),
        (#"{"coreId":"\#(String(repeating: "c", count: 129))"}"#, "INVALID_PARAMETER", "coreId"),
        (#"{"coreId":7}"#, "INVALID_PARAMETER", "coreId"),
        (#"{"coreId":"c","priority":0}"#, "INVALID_PARAMETER", "priority"),
        (#"{"coreId":"c","priority":11}"#, "INVALID_PARAMETER", "priority"),
        (#"{"coreId":"c","priority":"2"}"#, "INVALID_PARAMETER", "priority"),
        (#"{"coreId":"c","priority":2.5}"#, "INVALID_PARAMETER", "priority"),
        (#"{"coreId":"c","timeout":0}"#, "INVALID_PARAMETER", "timeout"),
        (#"{"coreId":"c","timeout":86401}"#, "INVALID_PARAMETER", "timeout"),
        (#"{"coreId":"c","stay":"yes"}"#, "INVALID_PARAMETER", "stay"),
        (#"{"coreId":"c","max_attempts":0}"#, "INVALID_PARAMETER", "max_attempts"),
        (#"{"coreId":"c","max_attempts":101}"#, "INVALID_PARAMETER", "max_attempts"),
        (#"{"coreId":"c","metadata":"x"}"#, "INVALID_PARAMETER", "metadata"),
        (#"{"coreId":"c","metadata":{"big":"\#(String(repeating: "m", count: 65536))"}}"#, "INVALID_PARAMETER", "metadata"),
    ]

    @Test(arguments: invalidDispatches)
    func dispatchValidationNamesTheField(body: String, code: String, field: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.request(.post, "/dispatch", token: token, json: body)
                #expect(response.status == .badRequest)
                let error = try response.error
                #expect(error.code == code)
                #expect(error.details["field"] == .string(field))
                #expect(try await api.request(.get, "/tasks", token: token).decode(TaskList.self).totalTasks == 0)
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func queuePositionFollowsClaimOrder(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            var positions: [Int] = []
            for priority in [1, 1, 5, 1, 10, 5] {
                let response = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "q", priority: priority))
                positions.append(try response.decode(DispatchResponse.self).queuePosition)
            }
            // p1 -> 1; p1 -> 2; p5 goes first -> 1; p1 -> 4; p10 -> 1; p5 after the other p5 -> 3.
            #expect(positions == [1, 2, 1, 4, 1, 3])
            let other = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "elsewhere"))
            #expect(try other.decode(DispatchResponse.self).queuePosition == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func estimatedStartUsesRecentDurationsAndWorkers(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let first = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "est")).decode(DispatchResponse.self)
            #expect(abs(first.estimatedStart.timeIntervalSince(first.createdAt)) < 1)
            let second = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "est")).decode(DispatchResponse.self)
            // No history yet: 30 s per task ahead, one worker assumed.
            #expect(abs(second.estimatedStart.timeIntervalSince(second.createdAt) - 30) < 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func claimOrderIsPriorityThenFIFO(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            var ids: [Int: String] = [:]
            for (index, priority) in [1, 3, 1, 3, 2].enumerated() {
                ids[index] = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "order", priority: priority))
                    .decode(DispatchResponse.self).taskID
            }
            var claimedOrder: [String] = []
            for _ in 0..<5 {
                let response = try await api.send(.post, "/cores/order/claim", token: token, body: ClaimRequest(workerID: "w1"))
                #expect(response.status == .ok)
                let claimed = try response.decode(ClaimResponse.self).tasks
                #expect(claimed.count == 1)
                claimedOrder += claimed.map(\.task.taskID)
            }
            #expect(claimedOrder == [ids[1], ids[3], ids[4], ids[0], ids[2]].compactMap { $0 })
            let empty = try await api.send(.post, "/cores/order/claim", token: token, body: ClaimRequest(workerID: "w1"))
            #expect(empty.status == .noContent)
        }
    }

    @Test(arguments: TestBackend.all)
    func claimReturnsLeaseAndStartsTheTask(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            for _ in 0..<3 { _ = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "batch")) }
            let response = try await api.send(.post, "/cores/batch/claim", token: token, body: ClaimRequest(workerID: "w9", lease: 45, maxTasks: 2))
            let tasks = try response.decode(ClaimResponse.self).tasks
            #expect(tasks.count == 2)
            for claimed in tasks {
                #expect(claimed.leaseToken.hasPrefix("lease-"))
                #expect(claimed.task.status == .running && claimed.task.workerID == "w9" && claimed.task.attempts == 1)
                #expect(abs(claimed.leaseExpiresAt.timeIntervalSinceNow - 45) < 2)
                let events = try await api.request(.get, "/jobs/\(claimed.task.taskID)/events", token: token).decode(TaskEventList.self)
                #expect(events.events.map(\.eventType) == ["task.created", "task.started"])
                #expect(events.events[1].data["worker_id"] == "w9")
            }
            let text = try await api.request(.get, "/tasks/\(tasks[0].task.taskID)", token: token).text
            #expect(!text.contains("lease-"))
        }
    }

    @Test(arguments: [
        (#"{}"#, "MISSING_PARAMETER", "worker_id"),
        (#"{"worker_id":""}"#, "INVALID_PARAMETER", "worker_id"),
        (#"{"worker_id":"w","wait":61}"#, "INVALID_PARAMETER", "wait"),
        (#"{"worker_id":"w","lease":0}"#, "INVALID_PARAMETER", "lease"),
        (#"{"worker_id":"w","lease":601}"#, "INVALID_PARAMETER", "lease"),
        (#"{"worker_id":"w","max_tasks":101}"#, "INVALID_PARAMETER", "max_tasks"),
    ])
    func claimValidationNamesTheField(body: String, code: String, field: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.request(.post, "/cores/c/claim", token: token, json: body)
                #expect(response.status == .badRequest)
                #expect(try response.error.code == code)
                #expect(try response.error.details["field"] == .string(field))
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func waitingClaimIsWokenByADispatchAtOnce(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            // Without a wake-up the claim would answer 204 at the end of its wait.
            async let claim = api.send(.post, "/cores/wake/claim", token: token, body: ClaimRequest(workerID: "sleepy", wait: 20))
            try await Task.sleep(for: .milliseconds(300))
            let dispatched = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "wake")).decode(DispatchResponse.self)
            let response = try await claim
            #expect(response.status == .ok)
            #expect(try response.decode(ClaimResponse.self).tasks.map(\.task.taskID) == [dispatched.taskID])
        }
    }

    @Test(arguments: TestBackend.all)
    func waitingClaimWithNothingAnswers204AfterItsWait(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let started = ContinuousClock.now
            let response = try await api.send(.post, "/cores/quiet/claim", token: token, body: ClaimRequest(workerID: "w", wait: 1))
            #expect(response.status == .noContent)
            #expect(ContinuousClock.now - started >= .milliseconds(900))
        }
    }

    @Test(arguments: TestBackend.all)
    func fiftyConcurrentClaimersOnFiveHundredTasksGetEachTaskOnce(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<500 {
                    group.addTask {
                        let response = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "race", metadata: ["n": .int(Int64(index))]))
                        #expect(response.status == .accepted)
                    }
                }
                try await group.waitForAll()
            }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<50 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let response = try await api.send(.post, "/cores/race/claim", token: token, body: ClaimRequest(workerID: "w\(worker)", maxTasks: 4))
                            if response.status == .noContent { return mine }
                            mine += try response.decode(ClaimResponse.self).tasks.map(\.task.taskID)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claimed.count == 500)
            #expect(Set(claimed).count == 500)
        }
    }

    @Test(arguments: TestBackend.all)
    func heartbeatKeepsALeaseAlivePastItsOriginalExpiry(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "hb"))
            let claimed = try await api.send(.post, "/cores/hb/claim", token: token, body: ClaimRequest(workerID: "w", lease: 2))
                .decode(ClaimResponse.self).tasks[0]
            // Four beats 0.8 s apart outlive the 2 s lease, with room for a loaded machine.
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(800))
                let beat = try await api.send(
                    .post, "/jobs/\(claimed.task.taskID)/heartbeat", token: token,
                    body: HeartbeatRequest(workerID: "w", leaseToken: claimed.leaseToken))
                #expect(beat.status == .ok)
                let body = try beat.decode(HeartbeatResponse.self)
                #expect(body.status == .running && !body.cancelRequested)
                #expect(body.leaseExpiresAt > Date())
            }
            // Over three seconds after an original two-second lease, the task is still the worker's.
            let task = try await api.request(.get, "/tasks/\(claimed.task.taskID)", token: token).decode(OrchTask.self)
            #expect(task.status == .running && task.attempts == 1)
            let done = try await api.send(
                .put, "/jobs/\(claimed.task.taskID)/status", token: token,
                body: StatusUpdateRequest(status: .completed, result: ["ok": true], leaseToken: claimed.leaseToken))
            #expect(done.status == .ok)
            let stale = try await api.send(
                .post, "/jobs/\(claimed.task.taskID)/heartbeat", token: token,
                body: HeartbeatRequest(workerID: "w", leaseToken: claimed.leaseToken))
            #expect(stale.status == .conflict)
        }
    }

    @Test(arguments: TestBackend.all)
    func lapsedLeaseRequeuesWhileAttemptsRemainThenFails(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "lapse", maxAttempts: 2))
                .decode(DispatchResponse.self).taskID
            let first = try await api.send(.post, "/cores/lapse/claim", token: token, body: ClaimRequest(workerID: "w1", lease: 1))
                .decode(ClaimResponse.self).tasks[0]
            // A blocking claim is handed the task again once the supervisor takes it back.
            let second = try await api.send(.post, "/cores/lapse/claim", token: token, body: ClaimRequest(workerID: "w2", wait: 10, lease: 1))
            #expect(second.status == .ok)
            let again = try second.decode(ClaimResponse.self).tasks[0]
            #expect(again.task.taskID == id && again.task.attempts == 2)
            // The first worker's lease is gone.
            let stale = try await api.send(
                .put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed, leaseToken: first.leaseToken))
            #expect(stale.status == .conflict)
            // No attempts left: the second lapse fails the task.
            let failed = try await waitForStatus(api, token: token, id: id, status: .failed, within: .seconds(5))
            #expect(failed.attempts == 2)
            let events = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events
            // Taken back as a retry: scheduled for the first backoff, then ready again.
            #expect(
                events.map(\.eventType)
                    == ["task.created", "task.started", "task.requeued", "task.ready", "task.started", "task.failed"])
            #expect(events[2].data["reason"] == "lease_expired")
            #expect(events[5].data["reason"] == "lease_expired")
        }
    }

    @Test(arguments: TestBackend.all)
    func runningPastTimeoutFailsWithReasonTimeout(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "slow", timeout: 1))
                .decode(DispatchResponse.self).taskID
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .running))
            let failed = try await waitForStatus(api, token: token, id: id, status: .failed, within: .seconds(5))
            #expect((failed.duration ?? 0) >= 1)
            let events = try await api.request(.get, "/jobs/\(id)/events?event_type=task.failed", token: token).decode(TaskEventList.self)
            #expect(events.events.first?.data["reason"] == "timeout")
        }
    }

    @Test(arguments: TestBackend.all)
    func cancellingARunningTaskTellsItsWorker(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "cancel"))
            let claimed = try await api.send(.post, "/cores/cancel/claim", token: token, body: ClaimRequest(workerID: "w"))
                .decode(ClaimResponse.self).tasks[0]
            let cancel = try await api.send(.put, "/jobs/\(claimed.task.taskID)/status", token: token, body: StatusUpdateRequest(status: .cancelled))
            #expect(cancel.status == .ok)
            let beat = try await api.send(
                .post, "/jobs/\(claimed.task.taskID)/heartbeat", token: token,
                body: HeartbeatRequest(workerID: "w", leaseToken: claimed.leaseToken)).decode(HeartbeatResponse.self)
            #expect(beat.cancelRequested && beat.status == .cancelled)
            let late = try await api.send(
                .put, "/jobs/\(claimed.task.taskID)/status", token: token,
                body: StatusUpdateRequest(status: .completed, leaseToken: claimed.leaseToken))
            #expect(late.status == .conflict)
            #expect(try late.error.code == "RESOURCE_CONFLICT")
        }
    }

    @Test(arguments: TestBackend.all)
    func stayTaskReturnsToTheQueueUntilCancelled(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "resident", stay: true))
                .decode(DispatchResponse.self).taskID
            for run in 1...2 {
                let claimed = try await api.send(.post, "/cores/resident/claim", token: token, body: ClaimRequest(workerID: "w"))
                    .decode(ClaimResponse.self).tasks
                #expect(claimed.map(\.task.taskID) == [id], "run \(run)")
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed, result: ["run": .int(Int64(run))]))
                let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
                #expect(task.status == .queued && task.result == ["run": .int(Int64(run))])
            }
            // After a failure it comes back after a delay (1 s for the first failure).
            _ = try await api.send(.post, "/cores/resident/claim", token: token, body: ClaimRequest(workerID: "w"))
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .failed, error: "boom"))
            let immediate = try await api.send(.post, "/cores/resident/claim", token: token, body: ClaimRequest(workerID: "w"))
            #expect(immediate.status == .noContent)
            let delayed = try await api.send(.post, "/cores/resident/claim", token: token, body: ClaimRequest(workerID: "w", wait: 5))
            #expect(try delayed.decode(ClaimResponse.self).tasks.map(\.task.taskID) == [id])
            _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .cancelled))
            let final = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(final.status == .cancelled)
            let requeues = try await api.request(.get, "/jobs/\(id)/events?event_type=task.requeued", token: token).decode(TaskEventList.self)
            #expect(requeues.totalEvents == 3)
            #expect(try await api.send(.post, "/cores/resident/claim", token: token, body: ClaimRequest(workerID: "w")).status == .noContent)
        }
    }

    @Test(arguments: TestBackend.all)
    func idempotencyKeyRepeatsTheOriginalOrConflicts(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let body = #"{"coreId":"idem","priority":4,"metadata":{"a":1}}"#
            let first = try await api.request(.post, "/dispatch", token: token, json: body, headers: [.idempotencyKey: "key-1"])
            #expect(first.status == .accepted)
            let respaced = #"{ "metadata": {"a": 1}, "priority": 4, "coreId": "idem" }"#
            let repeated = try await api.request(.post, "/dispatch", token: token, json: respaced, headers: [.idempotencyKey: "key-1"])
            #expect(repeated.status == .ok)
            #expect(try repeated.decode(DispatchResponse.self).taskID == first.decode(DispatchResponse.self).taskID)
            let different = try await api.request(
                .post, "/dispatch", token: token, json: #"{"coreId":"idem","priority":5}"#, headers: [.idempotencyKey: "key-1"])
            #expect(different.status == .conflict)
            #expect(try different.error.code == "RESOURCE_CONFLICT")
            // Another user's identical key is theirs alone.
            let (_, other) = try await api.createUser("idem_op", role: .operator, adminToken: token)
            let theirs = try await api.request(.post, "/dispatch", token: other, json: body, headers: [.idempotencyKey: "key-1"])
            #expect(theirs.status == .accepted)
            #expect(try await api.request(.get, "/tasks?core_id=idem", token: token).decode(TaskList.self).totalTasks == 2)
        }
    }

    @Test(arguments: TestBackend.all)
    func listTasksFiltersSortsAndPages(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            for (core, priority) in [("a", 1), ("a", 5), ("b", 3), ("a", 3)] {
                _ = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core, priority: priority))
                try await Task.sleep(for: .milliseconds(5))
            }
            let all = try await api.request(.get, "/tasks", token: token).decode(TaskList.self)
            #expect(all.totalTasks == 4 && all.pagination == Pagination(limit: 50, offset: 0, hasMore: false))
            #expect(all.tasks.map(\.priority) == [3, 3, 5, 1])  // newest first by default
            let byPriority = try await api.request(.get, "/tasks?sort=priority&order=desc", token: token).decode(TaskList.self)
            #expect(byPriority.tasks.map(\.priority) == [5, 3, 3, 1])
            let coreA = try await api.request(.get, "/tasks?core_id=a&order=asc", token: token).decode(TaskList.self)
            #expect(coreA.tasks.map(\.priority) == [1, 5, 3])
            let p3 = try await api.request(.get, "/tasks?priority=3", token: token).decode(TaskList.self)
            #expect(p3.totalTasks == 2)
            let page = try await api.request(.get, "/tasks?limit=2&offset=1&order=asc", token: token).decode(TaskList.self)
            #expect(page.tasks.map(\.priority) == [5, 3] && page.pagination.hasMore)
            _ = try await api.send(.post, "/cores/a/claim", token: token, body: ClaimRequest(workerID: "w"))
            let running = try await api.request(.get, "/tasks?status=running", token: token).decode(TaskList.self)
            #expect(running.tasks.map(\.priority) == [5])
            let health = try await api.request(.get, "/health").decode(HealthReport.self)
            #expect(health.metrics.activeTasks == 1)
            for bad in ["status=done", "sort=name", "order=up", "limit=501", "priority=11", "offset=x"] {
                let response = try await api.request(.get, "/tasks?\(bad)", token: token)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(try response.error.details["field"] == .string(String(bad.prefix { $0 != "=" })))
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func eventsPaginateAndFilter(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "ev")).decode(DispatchResponse.self).taskID
            for progress in stride(from: 10, through: 60, by: 10) {
                _ = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .running, progress: progress))
            }
            let middle = try await api.request(.get, "/jobs/\(id)/events?limit=3&offset=2", token: token).decode(TaskEventList.self)
            #expect(middle.totalEvents == 8)
            #expect(middle.events.map { $0.data["progress"] } == [10, 20, 30])
            #expect(middle.pagination == Pagination(limit: 3, offset: 2, hasMore: true))
            let progress = try await api.request(.get, "/jobs/\(id)/events?event_type=task.progress", token: token).decode(TaskEventList.self)
            #expect(progress.totalEvents == 6)
            let cut = progress.events[3].timestamp
            let since = try await api.request(.get, "/jobs/\(id)/events?since=\(Timestamp.format(cut))", token: token).decode(TaskEventList.self)
            #expect(since.events.allSatisfy { $0.timestamp > cut })
            let sequences = progress.events.compactMap(\.sequence)
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
            let bad = try await api.request(.get, "/jobs/\(id)/events?since=yesterday", token: token)
            #expect(try bad.error.details["field"] == "since")
            let finished = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .completed))
            #expect(finished.status == .ok)
            let refused = try await api.send(.put, "/jobs/\(id)/status", token: token, body: StatusUpdateRequest(status: .running))
            #expect(refused.status == .conflict)
            let queued = try await api.request(.put, "/jobs/\(id)/status", token: token, json: #"{"status":"queued"}"#)
            #expect(try queued.error.details["field"] == "status")
            let badProgress = try await api.request(.put, "/jobs/\(id)/status", token: token, json: #"{"status":"running","progress":101}"#)
            #expect(try badProgress.error.details["field"] == "progress")
        }
    }

    func waitForStatus(_ api: APIClient, token: String, id: String, status: TaskStatus, within limit: Duration) async throws -> OrchTask {
        let deadline = ContinuousClock.now + limit
        while true {
            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            if task.status == status || ContinuousClock.now > deadline { return task }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
