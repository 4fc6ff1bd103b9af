import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct WebhookTests {
    static let secret = "whsec-current"
    static let oldSecret = "whsec-previous"

    static func configuration(secrets: [String] = [secret, oldSecret], database: DatabaseURL = .sqliteMemory) -> ServerConfiguration {
        var configuration = TestServer.configuration(database: database)
        configuration.webhookSecrets = secrets
        return configuration
    }

    static func signature(_ body: String, secret: String = secret, at timestamp: Int64 = Int64(Date().timeIntervalSince1970)) -> String {
        WebhookSignature.header(secret: secret, timestamp: timestamp, body: Array(body.utf8))
    }

    static func post(_ api: APIClient, _ body: String, signature: String?) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let signature { headers[.xSignature] = signature }
        return try await api.request(.post, "/webhook", json: body, headers: headers)
    }

    /// The reference recipe, computed independently here: sorted keys, compact separators.
    static func pythonStyleSignature(of compact: String, at timestamp: Int64, secret: String = secret) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(compact)".utf8), using: key)
        return "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: TestBackend.all)
    func signatureOverRawBytesIsAccepted(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(), backend: backend) { api in
            let body = #"{"event": "custom.ping", "data": {"x": 1}}"#
            let response = try await Self.post(api, body, signature: Self.signature(body))
            #expect(response.status == .ok)
            let receipt = try response.decode(WebhookReceipt.self)
            #expect(receipt.status == "received" && receipt.webhookID.hasPrefix("webhook-") && receipt.eventID.hasPrefix("event-"))
            #expect(receipt.taskUpdated == nil)
        }
    }

    /// A client following the reference signs `json.dumps(payload, sort_keys=True,
    /// separators=(',', ':'))` but sends the body with other spacing, key order, non-ASCII text
    /// and floats.
    @Test(arguments: TestBackend.all)
    func signatureOverPythonStyleReserialisationIsAccepted(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(), backend: backend) { api in
            let sent = """
                {
                  "event": "custom.report",
                  "timestamp": 1642248600,
                  "data": {"summary": "Überprüfung abgeschlossen — 完了 😀", "ratio": 0.1, "big": 1e16, "tiny": 2.5e-07, "cpu": 45.20},
                  "core_id": "WORK_AI_01"
                }
                """
            let signed =
                #"{"core_id":"WORK_AI_01","data":{"big":1e+16,"cpu":45.2,"ratio":0.1,"summary":"\u00dcberpr\u00fcfung abgeschlossen \u2014 \u5b8c\u4e86 \ud83d\ude00","tiny":2.5e-07},"event":"custom.report","timestamp":1642248600}"#
            let now = Int64(Date().timeIntervalSince1970)
            let response = try await Self.post(api, sent, signature: Self.pythonStyleSignature(of: signed, at: now))
            #expect(response.status == .ok)
        }
    }

    @Test(arguments: TestBackend.all)
    func wrongSecretIsRefusedAndTheSecondSecretWorks(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(), backend: backend) { api in
            let body = #"{"event":"custom.ping"}"#
            let wrong = try await Self.post(api, body, signature: Self.signature(body, secret: "not-ours"))
            #expect(wrong.status == .unauthorized)
            #expect(try wrong.error.code == "AUTHENTICATION_REQUIRED")
            let rotated = try await Self.post(api, body, signature: Self.signature(body, secret: Self.oldSecret))
            #expect(rotated.status == .ok)
            // Several v1 values: any one may match.
            let now = Int64(Date().timeIntervalSince1970)
            let bad = Self.signature(body, secret: "nope", at: now).split(separator: ",")[1]
            let good = Self.signature(body, at: now)
            let several = try await Self.post(api, body, signature: "\(good),\(bad)")
            #expect(several.status == .ok)
        }
    }

    @Test(arguments: [nil, "", "v1=abcd", "t=abc,v1=00", "t=123", "t=123,v1=zz", "t=123,v1=abcd"])
    func missingOrMalformedHeaderIs401(header: String?) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(Self.configuration(), backend: backend) { api in
                let response = try await Self.post(api, #"{"event":"x"}"#, signature: header)
                #expect(response.status == .unauthorized)
            }
        }
    }

    /// Just past the 300 s tolerance either way (a few seconds beyond, since the server reads
    /// its clock a moment after the signature is made), and far past it.
    @Test(arguments: [-303, 303, -86_400])
    func timestampOutsideToleranceIs408(offset: Int64) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(Self.configuration(), backend: backend) { api in
                let body = #"{"event":"x"}"#
                let response = try await Self.post(api, body, signature: Self.signature(body, at: Int64(Date().timeIntervalSince1970) + offset))
                #expect(response.status == .requestTimeout)
                #expect(try response.error.code == "TIMEOUT")
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func noSecretsConfiguredIs503(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(secrets: []), backend: backend) { api in
            let response = try await Self.post(api, #"{"event":"x"}"#, signature: Self.signature(#"{"event":"x"}"#))
            #expect(response.status == .serviceUnavailable)
            #expect(try response.error.code == "SERVICE_UNAVAILABLE")
            #expect(try response.error.message.contains("ORCH_WEBHOOK_SECRETS"))
        }
    }

    @Test(arguments: [("not json", "VALIDATION_ERROR"), ("[1,2]", "VALIDATION_ERROR"), (#"{"data":{}}"#, "MISSING_PARAMETER")])
    func badPayloadIs400(body: String, code: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(Self.configuration(), backend: backend) { api in
                let response = try await Self.post(api, body, signature: Self.signature(body))
                #expect(response.status == .badRequest)
                #expect(try response.error.code == code)
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func bodyOverOneMebibyteIs413(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(), backend: backend) { api in
            let body = #"{"event":"x","pad":""# + String(repeating: "p", count: 1 << 20) + #""}"#
            let response = try await Self.post(api, body, signature: Self.signature(body))
            #expect(response.status == .contentTooLarge)
        }
    }

    /// A replay gets the first answer (same webhook_id) and is not processed again, even after a
    /// restart.
    @Test(arguments: TestBackend.all)
    func replayGetsTheFirstAnswerAcrossARestart(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            let configuration = Self.configuration(database: database)
            let first = OrderLog()
            let body = #"{"event":"custom.once","data":{"n":1}}"#
            let signature = Self.signature(body)
            try await TestServer.withApp(configuration, backend: backend) { api in
                let one = try await Self.post(api, body, signature: signature)
                let two = try await Self.post(api, body, signature: signature)
                #expect(one.status == .ok && two.status == .ok)
                #expect(one.text == two.text)
                first.append(one.text)
            }
            try await TestServer.withApp(configuration, backend: backend) { api in
                let three = try await Self.post(api, body, signature: signature)
                #expect(three.text == first.values.first)
                let store = try await openStore(configuration.databaseURL)
                let received = try await store.events(after: 0, through: .max, matching: .init(types: ["webhook.received"]), limit: 100)
                #expect(received.count == 1)
                try await store.close()
            }
        }
    }

    @Test(arguments: [
        ("task.started", #"{"worker_id":"ext-1"}"#, TaskStatus.running),
        ("task.progress", #"{"progress":40,"message":"half"}"#, TaskStatus.running),
        ("task.completed", #"{"duration":123.45,"result":{"processed_items":1000}}"#, TaskStatus.completed),
        ("task.failed", #"{"duration":2.5,"error":"disk full"}"#, TaskStatus.failed),
        ("task.cancelled", #"{}"#, TaskStatus.cancelled),
    ])
    func taskEventsUpdateTheTaskAsAStatusUpdateWould(event: String, data: String, status: TaskStatus) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(Self.configuration(), backend: backend) { api in
                let token = try await api.adminToken()
                let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "WORK_AI_01")).decode(DispatchResponse.self).taskID
                let body = #"{"event":"\#(event)","task_id":"\#(id)","core_id":"WORK_AI_01","status":"success","timestamp":1642248600,"data":\#(data)}"#
                let response = try await Self.post(api, body, signature: Self.signature(body))
                #expect(response.status == .ok)
                #expect(try response.decode(WebhookReceipt.self).taskUpdated == true)
                let task = try await api.request(.get, "/tasks/\(id)", token: token).decode(OrchTask.self)
                #expect(task.status == status)
                let events = try await api.request(.get, "/jobs/\(id)/events", token: token).decode(TaskEventList.self).events.map(\.eventType)
                #expect(events.contains(event))
                #expect(events.last == "webhook.received")
                switch event {
                case "task.started": #expect(task.workerID == "ext-1")
                case "task.progress": #expect(task.progress == 40)
                case "task.completed":
                    #expect(task.duration == 123.45)
                    #expect(task.result == ["processed_items": 1000])
                case "task.failed":
                    #expect(task.duration == 2.5)
                    #expect(task.error == "disk full")
                default: break
                }
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func unknownTaskIsRecordedNotAnError(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(), backend: backend) { api in
            let body = #"{"event":"task.completed","task_id":"task-unknown","data":{}}"#
            let response = try await Self.post(api, body, signature: Self.signature(body))
            #expect(response.status == .ok)
            let receipt = try response.decode(WebhookReceipt.self)
            #expect(receipt.taskUpdated == false && receipt.taskUpdateError == "task_not_found")
        }
    }
}

@Suite struct WebhookConcurrencyTests {
    /// Five distinct signed progress webhooks, each delivered four times at once: each is
    /// applied once (five progress events, one receipt each), and every copy gets its first
    /// copy's answer.
    @Test(arguments: TestBackend.all)
    func concurrentCopiesOfOneDeliveryAreAppliedOnce(backend: TestBackend) async throws {
        try await TestServer.withApp(WebhookTests.configuration(), backend: backend) { api in
            let token = try await api.adminToken()
            let taskID = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "hooks"))
                .decode(DispatchResponse.self).taskID
            let deliveries = (1...5).map { step in
                #"{"event":"task.progress","task_id":"\#(taskID)","data":{"progress":\#(step * 10),"message":"step \#(step)"}}"#
            }
            let signed = deliveries.map { ($0, WebhookTests.signature($0)) }
            let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, (body, signature)) in signed.enumerated() {
                    for _ in 0..<4 {
                        group.addTask {
                            let response = try await WebhookTests.post(api, body, signature: signature)
                            #expect(response.status == .ok)
                            return (index, try response.decode(WebhookReceipt.self).webhookID)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Set<String>]()) { $0[$1.0, default: []].insert($1.1) }
            }
            #expect(answers.count == 5 && answers.values.allSatisfy { $0.count == 1 }, "\(answers)")
            let events = try await api.request(.get, "/jobs/\(taskID)/events?limit=1000", token: token)
                .decode(TaskEventList.self).events
            #expect(events.filter { $0.eventType == "task.progress" }.count == 5)
            #expect(events.filter { $0.eventType == "webhook.received" }.count == 5)
        }
    }
}
