import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct DispatchBatchTests {
    static func batch(_ tasks: [String]) -> String { #"{"tasks":[\#(tasks.joined(separator: ","))]}"# }

    @Test(arguments: TestBackend.all)
    func eachTaskIsAnsweredAsDispatchWouldInOrder(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let first = try await api.request(.post, "/dispatch", token: token, json: #"{"coreId":"a","priority":3}"#)
            #expect(first.status == .accepted)
            let response = try await api.request(
                .post, "/dispatch/batch", token: token,
                json: Self.batch([
                    #"{"coreId":"a"}"#, #"{"core_id":"a","priority":5,"timeout":60}"#,
                    #"{"coreId":"a","metadata":{"n":3}}"#, #"{"coreId":"b","stay":true,"max_attempts":7}"#,
                ]))
            #expect(response.status == .accepted)
            let answers = try response.decode(DispatchBatchResponse.self).tasks
            #expect(answers.map(\.coreID) == ["a", "a", "a", "b"])
            #expect(answers.map(\.priority) == [1, 5, 1, 1])
            #expect(answers.map(\.timeout) == [300, 60, 300, 300])
            #expect(answers.allSatisfy { $0.status == .queued })
            // As if dispatched one after another: behind the 3; first; behind 5, 3 and 1; alone.
            #expect(answers.map(\.queuePosition) == [2, 1, 4, 1])
            #expect(Set(answers.map(\.taskID)).count == 4)
            for answer in answers {
                let task = try await api.request(.get, "/tasks/\(answer.taskID)", token: token).decode(OrchTask.self)
                #expect(task.coreID == answer.coreID && task.priority == answer.priority && task.createdAt == answer.createdAt)
                let events = try await api.request(.get, "/jobs/\(answer.taskID)/events", token: token)
                #expect(try events.decode(TaskEventList.self).events.map(\.eventType) == ["task.created"])
            }
            let last = try await api.request(.get, "/tasks/\(answers[3].taskID)", token: token).decode(OrchTask.self)
            #expect(last.stay && last.maxAttempts == 7)
            let third = try await api.request(.get, "/tasks/\(answers[2].taskID)", token: token).decode(OrchTask.self)
            #expect(third.metadata == ["n": 3])
            // The claim order agrees with the positions answered.
            let claim = try await api.request(.post, "/cores/a/claim", token: token, json: #"{"worker_id":"w","max_tasks":4}"#)
            let claimed = try claim.decode(ClaimResponse.self).tasks.map(\.task.taskID)
            let firstID = try first.decode(DispatchResponse.self).taskID
            #expect(claimed == [answers[1].taskID, firstID, answers[0].taskID, answers[2].taskID])
        }
    }

    /// Every body `POST /dispatch` refuses is refused inside a batch too, naming the task, and
    /// nothing of the batch is stored.
    @Test(arguments: TaskTests.invalidDispatches)
    func oneInvalidTaskRefusesTheWholeBatch(body: String, code: String, field: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.request(
                    .post, "/dispatch/batch", token: token, json: Self.batch([#"{"coreId":"ok"}"#, #"{"coreId":"ok2"}"#, body]))
                #expect(response.status == .badRequest)
                let error = try response.error
                #expect(error.code == code)
                #expect(error.details["field"] == .string("tasks[2].\(field)"))
                #expect(error.message.contains("tasks[2].\(field)"))
                #expect(try await api.request(.get, "/tasks", token: token).decode(TaskList.self).totalTasks == 0)
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func sizeRoleAndHeaderRules(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let empty = try await api.request(.post, "/dispatch/batch", token: token, json: #"{"tasks":[]}"#)
            #expect(empty.status == .badRequest)
            #expect(try empty.error.details["field"] == "tasks")
            let missing = try await api.request(.post, "/dispatch/batch", token: token, json: #"{}"#)
            #expect(missing.status == .badRequest)
            #expect(try missing.error.code == "MISSING_PARAMETER")
            let notArray = try await api.request(.post, "/dispatch/batch", token: token, json: #"{"tasks":{"coreId":"a"}}"#)
            #expect(notArray.status == .badRequest)
            #expect(try notArray.error.details["field"] == "tasks")
            let tooMany = try await api.request(
                .post, "/dispatch/batch", token: token,
                json: Self.batch(Array(repeating: #"{"coreId":"a"}"#, count: DispatchController.maximumBatch + 1)))
            #expect(tooMany.status == .badRequest)
            #expect(try tooMany.error.details["field"] == "tasks")

            var headers = HTTPFields()
            headers[.idempotencyKey] = "k1"
            let keyed = try await api.request(
                .post, "/dispatch/batch", token: token, json: Self.batch([#"{"coreId":"a"}"#]), headers: headers)
            #expect(keyed.status == .badRequest)
            #expect(try keyed.error.details["field"] == "Idempotency-Key")

            let viewer = try await api.createUser("watcher", role: .viewer, adminToken: token).token
            let refused = try await api.request(.post, "/dispatch/batch", token: viewer, json: Self.batch([#"{"coreId":"a"}"#]))
            #expect(refused.status == .forbidden)
            #expect(try await api.request(.get, "/tasks", token: token).decode(TaskList.self).totalTasks == 0)

            // The full thousand, with a body over the 1 MiB other routes take.
            let padding = String(repeating: "p", count: 2000)
            let full = try await api.request(
                .post, "/dispatch/batch", token: token,
                json: Self.batch(Array(repeating: #"{"coreId":"a","metadata":{"pad":"\#(padding)"}}"#, count: 1000)))
            #expect(full.status == .accepted)
            #expect(try full.decode(DispatchBatchResponse.self).tasks.map(\.queuePosition) == Array(1...1000))
            #expect(try await api.request(.get, "/tasks", token: token).decode(TaskList.self).totalTasks == 1000)

            // Over 16 MiB: 413.
            let huge = String(repeating: "h", count: 60_000)
            let tooLarge = try await api.request(
                .post, "/dispatch/batch", token: token,
                json: Self.batch(Array(repeating: #"{"coreId":"a","metadata":{"h":"\#(huge)"}}"#, count: 300)))
            #expect(tooLarge.status == .contentTooLarge)
        }
    }
}
