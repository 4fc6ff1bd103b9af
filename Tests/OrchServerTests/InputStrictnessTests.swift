import Foundation
import HTTPTypes
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// Request bodies are strict JSON, lengths count code points, identifiers are NFC.
@Suite struct InputStrictnessTests {
    @Test(arguments: [
        (#"{"coreId":"a",}"#, "after_key", "coreId"),
        (#"{"coreId":"a","coreId":"b"}"#, "field", "coreId"),
        (#"{"coreId":"a","metadata":{"k":1,"k":2}}"#, "field", "k"),
        (#"{"coreId":"a","metadata":{"list":[1,2,]}}"#, "after_key", "list"),
    ])
    func trailingCommasAndDuplicateKeysAreRefusedNamingTheKey(body: String, detail: String, key: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                let response = try await api.request(.post, "/dispatch", token: token, json: body)
                #expect(response.status == .badRequest)
                let error = try response.error
                #expect(error.code == "VALIDATION_ERROR")
                #expect(error.details[detail] == .string(key), "\(error)")
                #expect(error.message.contains("'\(key)'"))
            }
        }
    }

    @Test(arguments: ["null", "[]", #""coreId""#, "42", "true"])
    func aBodyThatIsNotAnObjectIsAValidationError(body: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let token = try await api.adminToken()
                for path in ["/dispatch", "/locks", "/auth/login"] {
                    let response = try await api.request(.post, path, token: token, json: body)
                    #expect(response.status == .badRequest)
                    #expect(try response.error.code == "VALIDATION_ERROR", "\(path) \(body): \(response.text)")
                }
            }
        }
    }

    /// U+0000 in any text of a body is refused alike on both backends (PostgreSQL cannot store
    /// it), before anything is stored; an escaped backslash followed by "u0000" is just text.
    @Test(arguments: TestBackend.all)
    func aNULCharacterIsRefusedOnEveryBackend(backend: TestBackend) async throws {
        try await TestServer.withApp(WebhookTests.configuration(), backend: backend) { api in
            let token = try await api.adminToken()
            for body in [
                #"{"core_id":"nul","metadata":{"k":"a\u0000b"}}"#, #"{"core_id":"nul","metadata":{"k\u0000":1}}"#,
                #"{"core_id":"nul","metadata":{"deep":[{"x":"\u0000"}]}}"#,
            ] {
                let response = try await api.request(.post, "/dispatch", token: token, json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(try response.error.code == "VALIDATION_ERROR")
                #expect(try response.error.message.contains("U+0000"))
            }
            let batch = try await api.request(
                .post, "/dispatch/batch", token: token, json: #"{"tasks":[{"core_id":"nul","metadata":{"k":"\u0000"}}]}"#)
            #expect(batch.status == .badRequest)
            let webhookBody = #"{"event":"custom.ping","data":{"k":"\u0000"}}"#
            let webhook = try await WebhookTests.post(api, webhookBody, signature: WebhookTests.signature(webhookBody))
            #expect(webhook.status == .badRequest)
            let tasks = try await api.request(.get, "/tasks", token: token).decode(TaskList.self)
            #expect(tasks.totalTasks == 0)
            let literal = try await api.request(
                .post, "/dispatch", token: token, json: #"{"core_id":"nul","metadata":{"k":"a\\u0000b"}}"#)
            #expect(literal.status == .accepted)
            let id = try literal.decode(DispatchResponse.self).taskID
            let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
            #expect(task.metadata["k"] == #"a\u0000b"#)
        }
    }

    @Test(arguments: TestBackend.all)
    func lengthsCountCodePointsNotCharacters(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            // One grapheme, 300,001 code points, 600 KB.
            let accents = "e" + String(repeating: "\u{301}", count: 300_000)
            let lock = try await LockTests.acquire(api, token, accents, owner: "o")
            #expect(lock.status == .badRequest)
            #expect(try lock.error.details["field"] == "resource")
            let owner = try await LockTests.acquire(api, token, "r", owner: String(repeating: "x", count: 400_000))
            #expect(try owner.error.details["field"] == "owner")
            let claim = try await api.request(
                .post, "/cores/c/claim", token: token,
                json: #"{"worker_id":"\#(String(repeating: "x\u{20DD}", count: 65))"}"#)  // 130 code points: U+20DD composes with nothing
            #expect(claim.status == .badRequest)
            #expect(try claim.error.details["field"] == "worker_id")
            // 256 code points of two bytes each are within `maxLength` 256; 257 are not.
            #expect(try await LockTests.acquire(api, token, String(repeating: "é", count: 256), owner: "o").status == .ok)
            #expect(try await LockTests.acquire(api, token, String(repeating: "é", count: 257), owner: "o").status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.all)
    func identifiersInEitherNormalFormAreOne(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let nfc = "caf\u{E9}"
            let nfd = "cafe\u{301}"
            #expect(try await LockTests.acquire(api, token, nfc, owner: "Jos\u{E9}").status == .ok)
            // The same lock in NFD: held by someone else.
            let other = try await LockTests.acquire(api, token, nfd, owner: "someone")
            #expect(other.status == .conflict)
            #expect(try other.error.code == "RESOURCE_LOCKED")
            // Listed once, in NFC.
            let list = try await api.request(.get, "/locks?resource=\(nfd.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)", token: token)
                .decode(LockList.self)
            #expect(list.locks.map { Array($0.resource.utf8) } == [Array(nfc.utf8)])
            // The owner in NFD releases it, naming the resource in NFD in the path.
            let path = nfd.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let owner = "Jose\u{301}".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let released = try await api.request(.delete, "/locks/\(path)?owner=\(owner)", token: token)
            #expect(released.status == .ok, "\(released.text)")
        }
    }
}
