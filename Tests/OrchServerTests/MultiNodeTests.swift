import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OrchModels
import OrchTestSupport
import Synchronization
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
            func node(_ number: Int) async throws -> ServerProcess {
                try await ServerProcess.start(environment: [
                    "ORCH_DATABASE_URL": database.environmentValue, "ORCH_ADMIN_PASSWORD": adminPassword,
                    "ORCH_NODE_ID": "node-\(number)", "ORCH_RATE_LIMITS": "admin=0,operator=0,viewer=0,system=0,anonymous=0",
                ].merging(environment) { $1 })
            }
            var nodes = [try await node(1)]
            for number in 2...count { nodes.append(try await node(number)) }
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

    /// A core's cap holds over every node (12 racing claims for 5 on three nodes take 3 tasks
    /// in all); a pause set through one node stops claims on the others and resuming there
    /// wakes a claim waiting on another; a delayed task dispatched through one node wakes a
    /// claim waiting on another when it comes due.
    @Test func capsPausesAndDelaysHoldAcrossNodes() async throws {
        try await Self.withNodes(3) { nodes, token in
            let client = HTTPClient.shared
            let capped = try await client.json(
                .PATCH, "\(nodes[0].baseURL)/cores/capped", token: token, body: #"{"max_running":3}"#)
            #expect(capped.status == 200)
            for index in 0..<20 { _ = try await Self.dispatch(nodes[index % 3], token, core: "capped") }
            let claimed = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<12 {
                    group.addTask {
                        let response = try await client.json(
                            .POST, "\(nodes[worker % 3].baseURL)/cores/capped/claim", token: token,
                            body: #"{"worker_id":"w-\#(worker)","max_tasks":5}"#)
                        guard response.status == 200 else { return 0 }
                        return try Timestamp.makeDecoder().decode(ClaimResponse.self, from: response.body).tasks.count
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(claimed == 3)

            _ = try await client.json(.PATCH, "\(nodes[0].baseURL)/cores/held", token: token, body: #"{"paused":true}"#)
            _ = try await Self.dispatch(nodes[1], token, core: "held")
            let refused = try await client.json(
                .POST, "\(nodes[2].baseURL)/cores/held/claim", token: token, body: #"{"worker_id":"w"}"#)
            #expect(refused.status == 204)
            let started = ContinuousClock.now
            async let waiting = client.json(
                .POST, "\(nodes[2].baseURL)/cores/held/claim", token: token, body: #"{"worker_id":"w","wait":20}"#)
            try await Task.sleep(for: .milliseconds(400))
            _ = try await client.json(.PATCH, "\(nodes[1].baseURL)/cores/held", token: token, body: #"{"paused":false}"#)
            #expect(try await waiting.status == 200)
            #expect(ContinuousClock.now - started < .seconds(10))

            let delayed = try await client.json(
                .POST, "\(nodes[0].baseURL)/dispatch", token: token, body: #"{"core_id":"later","delay":2}"#)
            #expect(delayed.status == 202)
            let later = ContinuousClock.now
            let due = try await client.json(
                .POST, "\(nodes[1].baseURL)/cores/later/claim", token: token, body: #"{"worker_id":"w","wait":20}"#)
            #expect(due.status == 200)
            #expect(ContinuousClock.now - later >= .seconds(1.5) && ContinuousClock.now - later < .seconds(15))
        }
    }

    /// Three nodes race to fire one schedule every second: each slot dispatches one task.
    @Test func eachScheduleSlotFiresOnceWithSeveralNodes() async throws {
        try await Self.withNodes(3) { nodes, token in
            let client = HTTPClient.shared
            let created = try await client.json(
                .POST, "\(nodes[1].baseURL)/schedules", token: token,
                body: #"{"name":"tick","core_id":"ticks","every":"1s"}"#)
            #expect(created.status == 201)
            let schedule = try Timestamp.makeDecoder().decode(Schedule.self, from: created.body)
            try await Task.sleep(for: .seconds(4.5))
            let paused = try await client.json(
                .PATCH, "\(nodes[2].baseURL)/schedules/\(schedule.scheduleID)", token: token, body: #"{"paused":true}"#)
            #expect(paused.status == 200)
            try await Task.sleep(for: .milliseconds(300))
            let listed = try await client.json(.GET, "\(nodes[0].baseURL)/tasks?core_id=ticks&limit=100", token: token)
            let tasks = try Timestamp.makeDecoder().decode(TaskList.self, from: listed.body).tasks
            var slots: [String] = []
            for task in tasks {
                let events = try await client.json(
                    .GET, "\(nodes[0].baseURL)/jobs/\(task.taskID)/events?event_type=task.created", token: token)
                let created = try Timestamp.makeDecoder().decode(TaskEventList.self, from: events.body).events
                slots += created.compactMap { $0.data["slot"]?.stringValue }
            }
            #expect(tasks.count >= 3 && tasks.count <= 5)
            #expect(slots.count == tasks.count && Set(slots).count == slots.count)
        }
    }

    /// A user deactivated through node 1 is refused by nodes 2 and 3, which had the user
    /// cached, as soon as their listeners hear of it: well within the cache's 5 s lifetime; the
    /// user's open streams on nodes 2 and 3 end.
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
            var streams: [SSEConnection] = []
            for node in nodes[1...] {
                streams.append(try await SSEConnection.open(port: node.port, headers: [("Authorization", "Bearer \(userToken)")]))
                #expect(streams.last?.status == 200)
            }
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
            // Their open streams end on every node too.
            for stream in streams { #expect(await stream.waitForEnd(timeout: .seconds(5))) }
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
                #expect(health?.node?.id == "node-\(index + 1)" && health?.node?.listener == .connected)
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

    /// Who holds the contended lock now, how often two did at once, and the fencing tokens in grant order.
    final class Holders: Sendable {
        let state = Mutex<(holders: Int, overlaps: Int, tokens: [Int])>((0, 0, []))
    }

    static func acquire(_ node: ServerProcess, _ token: String, _ body: String) async throws -> (status: Int, grant: [String: Any]) {
        let response = try await HTTPClient.shared.json(.POST, "\(node.baseURL)/locks", token: token, body: body)
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]) ?? [:])
    }

    static func release(_ node: ServerProcess, _ token: String, _ resource: String, owner: String) async throws -> Int {
        try await HTTPClient.shared.json(.DELETE, "\(node.baseURL)/locks/\(resource)?owner=\(owner)", token: token).status
    }

    /// Waits on nodes 2 and 3 are one queue: `GET /locks` on node 1 counts both, a release on
    /// node 1 hands the lock to the higher-priority waiter on node 2 although node 3's came
    /// first, and node 2's release hands it to node 3's; an expiry hands it on wherever the
    /// waiter is, once; and 12 contenders spread over the nodes never hold the lock at once,
    /// each grant with a higher fencing token than the one before.
    @Test func locksAreOneQueueAcrossNodes() async throws {
        try await Self.withNodes(3) { nodes, token in
            #expect(try await Self.acquire(nodes[0], token, #"{"resource":"shared","owner":"first","ttl":30}"#).status == 200)
            async let third = Self.acquire(nodes[2], token, #"{"resource":"shared","owner":"third","ttl":30,"timeout":20}"#)
            try await Task.sleep(for: .milliseconds(300))
            async let second = Self.acquire(
                nodes[1], token, #"{"resource":"shared","owner":"second","ttl":30,"timeout":20,"priority":5}"#)
            var status: [String: Any] = [:]
            for _ in 0..<100 {
                let listed = try await HTTPClient.shared.json(.GET, "\(nodes[0].baseURL)/locks", token: token)
                status = (try JSONSerialization.jsonObject(with: listed.body) as? [String: Any])?["queue_status"] as? [String: Any] ?? [:]
                if status["total_waiting"] as? Int == 2 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(status["total_waiting"] as? Int == 2)
            #expect((status["by_resource"] as? [String: Any])?["shared"] as? Int == 2)
            let started = ContinuousClock.now
            #expect(try await Self.release(nodes[0], token, "shared", owner: "first") == 200)
            let secondGrant = try await second
            #expect(secondGrant.status == 200 && secondGrant.grant["owner"] as? String == "second")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try await Self.release(nodes[1], token, "shared", owner: "second") == 200)
            let thirdGrant = try await third
            #expect(thirdGrant.status == 200 && thirdGrant.grant["owner"] as? String == "third")
            let tokens = [secondGrant, thirdGrant].compactMap { $0.grant["fencing_token"] as? Int }
            #expect(tokens.count == 2 && tokens[0] < tokens[1])

            // Expiry: node 1's one-second lock lapses and goes to the waiter on node 3, once.
            let stream = try await SSEConnection.open(
                port: nodes[1].port, query: "filter=lock.expired", headers: [("Authorization", "Bearer \(token)")])
            #expect(try await Self.acquire(nodes[0], token, #"{"resource":"brief","owner":"short","ttl":1}"#).status == 200)
            let heir = try await Self.acquire(nodes[2], token, #"{"resource":"brief","owner":"heir","ttl":30,"timeout":10}"#)
            #expect(heir.status == 200 && heir.grant["owner"] as? String == "heir")
            #expect(await stream.waitUntil(timeout: .seconds(5)) { $0.contains { $0.resource == "brief" } })
            try await Task.sleep(for: .milliseconds(500))
            #expect(stream.events.filter { $0.resource == "brief" }.count == 1)
            stream.close()

            // Twelve contenders on three nodes.
            let inside = Holders()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for contender in 0..<12 {
                    group.addTask {
                        let node = nodes[contender % 3]
                        for _ in 0..<4 {
                            let grant = try await Self.acquire(
                                node, token, #"{"resource":"contended","owner":"c\#(contender)","ttl":10,"timeout":60}"#)
                            #expect(grant.status == 200)
                            guard grant.status == 200 else { return }
                            inside.state.withLock {
                                if $0.holders > 0 { $0.overlaps += 1 }
                                $0.holders += 1
                                $0.tokens.append(grant.grant["fencing_token"] as? Int ?? -1)
                            }
                            try await Task.sleep(for: .milliseconds(5))
                            inside.state.withLock { $0.holders -= 1 }
                            #expect(try await Self.release(node, token, "contended", owner: "c\(contender)") == 200)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seen = inside.state.withLock { $0 }
            #expect(seen.overlaps == 0 && seen.tokens.count == 48)
            #expect(seen.tokens == seen.tokens.sorted() && Set(seen.tokens).count == 48)
        }
    }

    /// Background work with three nodes happens once: a lapsed lease gives one
    /// `task.requeued`, each of 12 callbacks is sent once, and an alert is raised once (by the
    /// one node that leads).
    @Test func backgroundWorkHappensOnceWithSeveralNodes() async throws {
        let receiver = CallbackReceiver(statuses: [200])
        try await receiver.start()
        defer { receiver.stop() }
        let environment = [
            "ORCH_WEBHOOK_SECRETS": "whsec-multi-node", "ORCH_MONITOR_INTERVAL": "1", "ORCH_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            "ORCH_ALERT_THRESHOLDS": "queue_depth=3,queue_age=0,lock_wait=0,db_latency_ms=0,memory_mb=0",
        ]
        try await Self.withNodes(3, environment: environment) { nodes, token in
            var leaders: [String] = []
            for _ in 0..<100 {
                leaders = []
                for node in nodes {
                    let health = try await HTTPClient.shared.json(.GET, "\(node.baseURL)/health")
                    let report = try Timestamp.makeDecoder().decode(HealthReport.self, from: health.body)
                    if report.node?.leader == true { leaders.append(report.node?.id ?? "") }
                }
                if leaders.count == 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(leaders.count == 1)
            let alerts = try await SSEConnection.open(
                port: nodes[2].port, query: "filter=system.alert", headers: [("Authorization", "Bearer \(token)")])
            for index in 0..<5 { _ = try await Self.dispatch(nodes[index % 3], token, core: "deep") }

            var leased: [String] = []
            for index in 0..<10 { leased.append(try await Self.dispatch(nodes[index % 3], token, core: "lapse")) }
            let claim = try await HTTPClient.shared.json(
                .POST, "\(nodes[0].baseURL)/cores/lapse/claim", token: token,
                body: #"{"worker_id":"w-gone","max_tasks":10,"lease":1}"#)
            #expect(try Timestamp.makeDecoder().decode(ClaimResponse.self, from: claim.body).tasks.count == 10)

            var callbacks: [String] = []
            for index in 0..<12 {
                let response = try await HTTPClient.shared.json(
                    .POST, "\(nodes[index % 3].baseURL)/dispatch", token: token,
                    body: #"{"core_id":"cb","metadata":{"callback_url":"http://127.0.0.1:\#(receiver.port)/hook"}}"#)
                let id = try Timestamp.makeDecoder().decode(DispatchResponse.self, from: response.body).taskID
                callbacks.append(id)
                let done = try await HTTPClient.shared.json(
                    .PUT, "\(nodes[(index + 1) % 3].baseURL)/jobs/\(id)/status", token: token, body: #"{"status":"completed"}"#)
                #expect(done.status == 200)
            }
            #expect(await receiver.waitFor(12))
            for id in leased {
                var requeues = 0
                for _ in 0..<100 {
                    let history = try await HTTPClient.shared.json(.GET, "\(nodes[1].baseURL)/jobs/\(id)/events", token: token)
                    requeues = try Timestamp.makeDecoder().decode(TaskEventList.self, from: history.body).events
                        .filter { $0.eventType == "task.requeued" }.count
                    if requeues > 0 { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(requeues == 1, "\(id)")
            }
            // Give a second sender every chance to show itself.
            try await Task.sleep(for: .seconds(2))
            let sent = receiver.received.compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any])?["task_id"] as? String
            }
            #expect(sent.count == 12 && Set(sent) == Set(callbacks))
            // Three nodes sample every second; the leader alone raised the deep queue's alert, once.
            let deep = alerts.events.filter {
                ($0.json?["data"] as? [String: Any])?["core_id"] as? String == "deep"
                    && ($0.json?["data"] as? [String: Any])?["state"] as? String == "firing"
            }
            #expect(deep.count == 1)
            alerts.close()
            for id in leased {
                let history = try await HTTPClient.shared.json(.GET, "\(nodes[2].baseURL)/jobs/\(id)/events", token: token)
                let requeues = try Timestamp.makeDecoder().decode(TaskEventList.self, from: history.body).events
                    .filter { $0.eventType == "task.requeued" }.count
                #expect(requeues == 1, "\(id)")
            }
        }
    }

    /// With nodes 1 and 2 killed (`kill -9`), node 3 expires the lock node 1 granted and hands
    /// it to its own waiter, requeues the tasks whose lease node 2 gave, takes over leadership,
    /// and goes on streaming events; a stream cut by node 1's death resumes on node 3 with
    /// nothing lost; a worker that claimed through node 1 finishes its task through node 3.
    @Test func theLastNodeStandingTakesOverFromKilledNodes() async throws {
        try await Self.withNodes(3) { nodes, token in
            let auth = [("Authorization", "Bearer \(token)")]
            let watching = try await SSEConnection.open(
                port: nodes[2].port, query: "filter=lock.acquired,lock.expired,task.requeued,task.created", headers: auth)
            #expect(try await Self.acquire(nodes[0], token, #"{"resource":"orphaned","owner":"dead","ttl":5}"#).status == 200)
            let taskID = try await Self.dispatch(nodes[1], token, core: "orphan")
            let claim = try await HTTPClient.shared.json(
                .POST, "\(nodes[1].baseURL)/cores/orphan/claim", token: token, body: #"{"worker_id":"w-dead","lease":2}"#)
            #expect(claim.status == 200)
            let carried = try await Self.dispatch(nodes[0], token, core: "carry")
            let carriedClaim = try await HTTPClient.shared.json(
                .POST, "\(nodes[0].baseURL)/cores/carry/claim", token: token, body: #"{"worker_id":"w-alive","lease":60}"#)
            let lease = try #require(
                try Timestamp.makeDecoder().decode(ClaimResponse.self, from: carriedClaim.body).tasks.first?.leaseToken)
            let cut = try await SSEConnection.open(port: nodes[0].port, query: "filter=task.created", headers: auth)
            let before = try await Self.dispatch(nodes[2], token, core: "stream")
            #expect(await cut.waitUntil { $0.contains { $0.json?["task_id"] as? String == before } })
            let lastSeen = try #require(cut.events.last?.id)

            #expect(await nodes[0].stopped(signal: SIGKILL) == SIGKILL)
            #expect(await nodes[1].stopped(signal: SIGKILL) == SIGKILL)
            #expect(await cut.waitForEnd())
            let missed = try await Self.dispatch(nodes[2], token, core: "stream")
            // The worker whose node died carries on through node 3 with its lease.
            let beat = try await HTTPClient.shared.json(
                .POST, "\(nodes[2].baseURL)/jobs/\(carried)/heartbeat", token: token,
                body: #"{"worker_id":"w-alive","lease_token":"\#(lease)"}"#)
            #expect(beat.status == 200)
            let finished = try await HTTPClient.shared.json(
                .PUT, "\(nodes[2].baseURL)/jobs/\(carried)/status", token: token,
                body: #"{"status":"completed","lease_token":"\#(lease)"}"#)
            #expect(finished.status == 200)

            let heir = try await Self.acquire(nodes[2], token, #"{"resource":"orphaned","owner":"heir","ttl":30,"timeout":15}"#)
            #expect(heir.status == 200 && heir.grant["owner"] as? String == "heir")
            // The heir's answer can come before the events reach this stream (the bus releases them
            // in sequence order, after the dead nodes' gaps are settled): wait for both.
            #expect(await watching.waitUntil(timeout: .seconds(15)) { frames in
                frames.contains { $0.eventType == "task.requeued" && $0.json?["task_id"] as? String == taskID }
                    && frames.contains { $0.eventType == "lock.expired" && $0.resource == "orphaned" }
            })
            try await Task.sleep(for: .milliseconds(300))
            let frames = watching.events
            #expect(frames.filter { $0.eventType == "lock.expired" && $0.resource == "orphaned" }.count == 1)
            #expect(frames.filter { $0.eventType == "task.requeued" }.count == 1)
            #expect(frames.contains { $0.eventType == "task.created" && $0.json?["task_id"] as? String == missed })
            watching.close()

            let resumed = try await SSEConnection.open(
                port: nodes[2].port, query: "filter=task.created", headers: auth + [("Last-Event-ID", lastSeen)])
            #expect(await resumed.waitUntil { $0.contains { $0.json?["task_id"] as? String == missed } })
            resumed.close()
            var leads = false
            for _ in 0..<100 where !leads {
                let health = try await HTTPClient.shared.json(.GET, "\(nodes[2].baseURL)/health")
                leads = try Timestamp.makeDecoder().decode(HealthReport.self, from: health.body).node?.leader == true
                if !leads { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(leads)
        }
    }

    /// Failed logins are counted in the database: eight failures spread over three nodes lock
    /// the (username, address) pair out on every node, as eight on one node would.
    @Test func failedLoginsAreCountedAcrossNodes() async throws {
        try await Self.withNodes(3) { nodes, _ in
            let wrong = #"{"username":"admin","password":"not-the-password"}"#
            for attempt in 0..<8 {
                let response = try await HTTPClient.shared.json(.POST, "\(nodes[attempt % 3].baseURL)/auth/login", body: wrong)
                #expect(response.status == 401, "attempt \(attempt + 1)")
            }
            for node in nodes {
                let refused = try await HTTPClient.shared.json(
                    .POST, "\(node.baseURL)/auth/login", body: #"{"username":"admin","password":"\#(Self.adminPassword)"}"#)
                #expect(refused.status == 429, "\(node.baseURL)")
            }
        }
    }
}
