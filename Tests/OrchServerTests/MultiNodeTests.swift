import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OrchModels
import OrchTestSupport
import Testing

/// Several real `orch serve` processes on one PostgreSQL database acting as one server.
@Suite(.serialized) struct MultiNodeTests {
    static let adminPassword = "multi-node-admin-password"

    /// Starts `count` nodes on a fresh database (the first alone, so that it creates the admin)
    /// and runs `body` with them and an admin token from the first.
    static func withNodes(
        _ count: Int, environment: [String: String] = [:], _ body: ([ServerProcess], String) async throws -> Void
    ) async throws {
        try await TestBackend.postgres.withDatabase { database in
            func node(_ number: Int) throws -> ServerProcess {
                try ServerProcess(environment: [
                    "ORCH_DATABASE_URL": database.environmentValue, "ORCH_ADMIN_PASSWORD": adminPassword,
                    "ORCH_NODE_ID": "node-\(number)", "ORCH_RATE_LIMITS": "admin=0,operator=0,viewer=0,system=0,anonymous=0",
                ].merging(environment) { $1 })
            }
            var nodes = [try node(1)]
            for number in 2...count { nodes.append(try node(number)) }
            let login = try await HTTPClient.shared.json(
                .POST, "\(nodes[0].baseURL)/auth/login", body: #"{"username":"admin","password":"\#(adminPassword)"}"#)
            let token = try Timestamp.makeDecoder().decode(LoginResponse.self, from: login.body).accessToken
            try await body(nodes, token)
        }
    }

    static func dispatch(_ node: ServerProcess, _ token: String, core: String) async throws -> String {
        let response = try await HTTPClient.shared.json(
            .POST, "\(node.baseURL)/dispatch", token: token, body: #"{"core_id":"\#(core)"}"#)
        #expect(response.status == 202)
        return try Timestamp.makeDecoder().decode(DispatchResponse.self, from: response.body).taskID
    }

    /// A stream on node 1 carries every event written through nodes 2 and 3, concurrently and
    /// with a 1,000-task batch among them, in strictly increasing order and none twice; a
    /// stream resumed on node 2 from the middle carries the rest; a token from node 1 works on
    /// the others.
    @Test func eventsWrittenThroughAnyNodeStreamOnEveryNodeInOrder() async throws {
        try await Self.withNodes(3) { nodes, token in
            let auth = [("Authorization", "Bearer \(token)")]
            let stream = try await SSEConnection.open(port: nodes[0].port, query: "filter=task.created", headers: auth)
            #expect(stream.status == 200)
            let batch = #"{"tasks":[\#(Array(repeating: #"{"core_id":"batch"}"#, count: 1000).joined(separator: ","))]}"#
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<6 {
                    group.addTask {
                        var ids: [String] = []
                        for _ in 0..<25 { ids.append(try await Self.dispatch(nodes[1 + writer % 2], token, core: "spread")) }
                        return ids
                    }
                }
                group.addTask {
                    let response = try await HTTPClient.shared.json(.POST, "\(nodes[1].baseURL)/dispatch/batch", token: token, body: batch)
                    #expect(response.status == 202)
                    return try Timestamp.makeDecoder().decode(DispatchBatchResponse.self, from: response.body).tasks.map(\.taskID)
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(ids.count == 1150)
            let wanted = Set(ids)
            let complete = await stream.waitUntil(timeout: .seconds(30)) { frames in
                Set(frames.compactMap { $0.json?["task_id"] as? String }).isSuperset(of: wanted)
            }
            #expect(complete)
            let sequences = stream.events.compactMap { $0.id.flatMap { Int64($0) } }
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
            #expect(sequences.count == 1150)
            stream.close()

            let middle = sequences[575]
            let resumed = try await SSEConnection.open(
                port: nodes[2].port, query: "filter=task.created", headers: auth + [("Last-Event-ID", String(middle))])
            #expect(await resumed.waitUntil(timeout: .seconds(20)) { $0.filter { $0.id != nil }.count >= 574 })
            #expect(resumed.events.compactMap { $0.id.flatMap { Int64($0) } } == Array(sequences[576...]))
            resumed.close()
        }
    }

    /// A claim long-polling on node 2 answers as soon as a task is dispatched through node 3,
    /// and each of 300 tasks dispatched through all nodes is claimed exactly once by 15
    /// workers spread over them.
    @Test func claimsAcrossNodes() async throws {
        try await Self.withNodes(3) { nodes, token in
            let started = ContinuousClock.now
            async let waiting = HTTPClient.shared.json(
                .POST, "\(nodes[1].baseURL)/cores/woken/claim", token: token, body: #"{"worker_id":"w-wait","wait":20}"#)
            try await Task.sleep(for: .milliseconds(300))
            let taskID = try await Self.dispatch(nodes[2], token, core: "woken")
            let claim = try await waiting
            #expect(claim.status == 200)
            #expect(String(decoding: claim.body, as: UTF8.self).contains(taskID))
            // Woken by the dispatch, not answered when its 20 s wait ran out.
            #expect(ContinuousClock.now - started < .seconds(10))

            var dispatched: [String] = []
            for index in 0..<300 { dispatched.append(try await Self.dispatch(nodes[index % 3], token, core: "shared")) }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<15 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let response = try await HTTPClient.shared.json(
                                .POST, "\(nodes[worker % 3].baseURL)/cores/shared/claim", token: token,
                                body: #"{"worker_id":"w-\#(worker)","max_tasks":7,"wait":1}"#)
                            guard response.status == 200 else { return mine }
                            mine += try Timestamp.makeDecoder().decode(ClaimResponse.self, from: response.body).tasks.map(\.task.taskID)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claimed.count == 300 && Set(claimed) == Set(dispatched))
        }
    }

    /// A user deactivated through node 1 is refused by nodes 2 and 3, which had the user
    /// cached, as soon as their listeners hear of it: well within the cache's 5 s lifetime.
    @Test func deactivationOnOneNodeIsRefusedOnTheOthers() async throws {
        try await Self.withNodes(3) { nodes, token in
            let client = HTTPClient.shared
            let created = try await client.json(
                .POST, "\(nodes[0].baseURL)/users", token: token,
                body: #"{"username":"spread-op","email":"spread-op@example.com","password":"spread-op-password","role":"operator"}"#)
            #expect(created.status == 201)
            let userID = try #require(try JSONSerialization.jsonObject(with: created.body) as? [String: Any])["user_id"] as? String
            let login = try await client.json(
                .POST, "\(nodes[1].baseURL)/auth/login", body: #"{"username":"spread-op","password":"spread-op-password"}"#)
            let userToken = try Timestamp.makeDecoder().decode(LoginResponse.self, from: login.body).accessToken
            for node in nodes { #expect(try await client.json(.GET, "\(node.baseURL)/auth/me", token: userToken).status == 200) }
            let deactivated = try await client.json(
                .PATCH, "\(nodes[0].baseURL)/users/\(try #require(userID))", token: token, body: #"{"is_active":false}"#)
            #expect(deactivated.status == 200)
            let since = ContinuousClock.now
            for node in nodes[1...] {
                var status = 200
                while status == 200 && ContinuousClock.now - since < .seconds(1) {
                    status = try await client.json(.GET, "\(node.baseURL)/auth/me", token: userToken).status
                    if status == 200 { try await Task.sleep(for: .milliseconds(10)) }
                }
                #expect(status == 401, "\(node.baseURL)")
            }
        }
    }

    /// `/health` names the node that answered and says its listener is connected;
    /// `/metrics` has the node's info metric.
    @Test func eachNodeSaysWhichItIs() async throws {
        try await Self.withNodes(2) { nodes, token in
            for (index, node) in nodes.enumerated() {
                var health: HealthReport?
                for _ in 0..<100 {
                    let response = try await HTTPClient.shared.json(.GET, "\(node.baseURL)/health")
                    health = try Timestamp.makeDecoder().decode(HealthReport.self, from: response.body)
                    if health?.node?.listener == .connected { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(health?.node == HealthReport.Node(id: "node-\(index + 1)", listener: .connected))
                let metrics = try await HTTPClient.shared.json(.GET, "\(node.baseURL)/metrics", token: token)
                let text = String(decoding: metrics.body, as: UTF8.self)
                #expect(text.contains(#"orch_node_info{node_id="node-\#(index + 1)"} 1"#))
                #expect(text.contains("orch_cluster_listener_up 1"))
            }
        }
    }

    /// A POST with `headers`; returns the status and body.
    static func post(_ url: String, body: String, headers: [(String, String)]) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), Data(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// One `Idempotency-Key` sent to three nodes at once makes one task; one signed webhook
    /// sent to the three at once is applied once, and every copy gets the first answer.
    @Test func idempotencyKeysAndWebhookReplaysHoldAcrossNodes() async throws {
        let secret = "whsec-multi-node"
        try await Self.withNodes(3, environment: ["ORCH_WEBHOOK_SECRETS": secret]) { nodes, token in
            let keyed = try await withThrowingTaskGroup(of: (status: Int, body: Data).self) { group in
                for node in nodes {
                    group.addTask {
                        try await Self.post(
                            "\(node.baseURL)/dispatch", body: #"{"core_id":"idem"}"#,
                            headers: [("Authorization", "Bearer \(token)"), ("Idempotency-Key", "spread-key-1")])
                    }
                }
                return try await group.reduce(into: [(status: Int, body: Data)]()) { $0.append($1) }
            }
            #expect(keyed.allSatisfy { (200...202).contains($0.status) })
            let taskIDs = try keyed.map { try Timestamp.makeDecoder().decode(DispatchResponse.self, from: $0.body).taskID }
            #expect(Set(taskIDs).count == 1)
            let listed = try await HTTPClient.shared.json(.GET, "\(nodes[2].baseURL)/tasks?core_id=idem", token: token)
            #expect(try Timestamp.makeDecoder().decode(TaskList.self, from: listed.body).totalTasks == 1)

            let taskID = try await Self.dispatch(nodes[0], token, core: "hook")
            let body = #"{"event":"task.progress","task_id":"\#(taskID)","data":{"progress":40}}"#
            let timestamp = Int64(Date().timeIntervalSince1970)
            let code = HMAC<SHA256>.authenticationCode(
                for: Data("\(timestamp).".utf8) + Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            let signature = "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
            let copies = try await withThrowingTaskGroup(of: (status: Int, body: Data).self) { group in
                for node in nodes + nodes {
                    group.addTask { try await Self.post("\(node.baseURL)/webhook", body: body, headers: [("X-Signature", signature)]) }
                }
                return try await group.reduce(into: [(status: Int, body: Data)]()) { $0.append($1) }
            }
            #expect(copies.allSatisfy { $0.status == 200 })
            #expect(Set(copies.map(\.body)).count == 1)
            let history = try await HTTPClient.shared.json(.GET, "\(nodes[1].baseURL)/jobs/\(taskID)/events", token: token)
            let types = try Timestamp.makeDecoder().decode(TaskEventList.self, from: history.body).events.map(\.eventType)
            #expect(types.filter { $0 == "task.progress" }.count == 1 && types.filter { $0 == "webhook.received" }.count == 1)
        }
    }
}
