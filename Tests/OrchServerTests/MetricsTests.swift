import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct MetricsTests {
    static func scrape(_ api: APIClient, token: String) async throws -> (text: String, exposition: Exposition) {
        let response = try await api.request(.get, "/metrics", token: token)
        #expect(response.status == .ok)
        return (response.text, try Exposition(response.text))
    }

    /// Dispatches, claims and completes a task on `core`; returns its id.
    static func runTask(_ api: APIClient, token: String, core: String, duration: Double) async throws -> String {
        let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core))
            .decode(DispatchResponse.self).taskID
        let claim = try await api.send(.post, "/cores/\(core)/claim", token: token, body: ClaimRequest(workerID: "w1"))
        let lease = try #require(try claim.decode(ClaimResponse.self).tasks.first?.leaseToken)
        let done = try await api.send(
            .put, "/jobs/\(id)/status", token: token,
            body: StatusUpdateRequest(status: .completed, result: ["ok": true], leaseToken: lease, duration: duration))
        #expect(done.status == .ok, "\(done.text)")
        return id
    }

    @Test(arguments: TestBackend.all)
    func needsAViewerAndAnswersTextFormat004(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (_, viewer) = try await api.createUser("metrics_viewer", role: .viewer, adminToken: admin)
            #expect(try await api.request(.get, "/metrics").status == .unauthorized)
            let response = try await api.request(.get, "/metrics", token: viewer)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4")
        }
    }

    /// The reference's four metrics with its names and labels; `endpoint` is always a template.
    @Test(arguments: TestBackend.all)
    func referenceSeriesWithTemplatedEndpointsAndConsistentHistograms(backend: TestBackend) async throws {
        try await TestServer.withApp(WebhookTests.configuration(), backend: backend) { api in
            let token = try await api.adminToken()
            let id = try await Self.runTask(api, token: token, core: "WORK_AI_01", duration: 3)
            _ = try await Self.runTask(api, token: token, core: "WORK_AI_01", duration: 0.4)
            #expect(try await api.request(.get, "/jobs/\(id)/events", token: token).status == .ok)
            #expect(try await api.request(.get, "/tasks/\(id)", token: token).status == .ok)
            #expect(try await api.request(.get, "/no/such/\(id)", token: token).status == .notFound)
            let body = #"{"event":"custom.ping","data":{}}"#
            #expect(try await WebhookTests.post(api, body, signature: WebhookTests.signature(body)).status == .ok)
            #expect(try await WebhookTests.post(api, body, signature: "t=1,v1=00").status != .ok)

            let (text, metrics) = try await Self.scrape(api, token: token)
            #expect(metrics.types["orch_http_requests_total"] == "counter")
            #expect(metrics.helps["orch_http_requests_total"] == "Total HTTP requests")
            #expect(
                metrics.value(
                    "orch_http_requests_total", ["method": "GET", "status": "200", "endpoint": "/jobs/{task_id}/events"]) == 1)
            #expect(metrics.value("orch_http_requests_total", ["method": "POST", "status": "202", "endpoint": "/dispatch"]) == 2)
            #expect(metrics.value("orch_http_requests_total", ["method": "GET", "endpoint": "/tasks/{task_id}"]) == 1)
            #expect(metrics.value("orch_http_requests_total", ["status": "404", "endpoint": "unmatched"]) == 1)
            for sample in metrics.samples(named: "orch_http_requests_total") {
                #expect(Set(sample.labels.keys) == ["method", "status", "endpoint"])
                #expect(!(sample.labels["endpoint"] ?? "").contains(id), "raw path in \(sample)")
            }
            #expect(!text.contains(id))

            #expect(metrics.types["orch_task_duration_seconds"] == "histogram")
            #expect(metrics.value("orch_task_duration_seconds_count", ["core_id": "WORK_AI_01"]) == 2)
            #expect(metrics.value("orch_task_duration_seconds_sum", ["core_id": "WORK_AI_01"]) == 3.4)
            #expect(metrics.value("orch_task_duration_seconds_bucket", ["core_id": "WORK_AI_01", "le": "1.0"]) == 1)
            #expect(metrics.value("orch_task_duration_seconds_bucket", ["core_id": "WORK_AI_01", "le": "5.0"]) == 2)

            #expect(metrics.types["orch_sse_connections_active"] == "gauge")
            #expect(metrics.value("orch_sse_connections_active") == 0)
            #expect(metrics.value("orch_webhook_signatures_verified_total", ["status": "success"]) == 1)
            #expect(metrics.value("orch_webhook_signatures_verified_total", ["status": "failure"]) == 1)

            #expect(metrics.value("orch_tasks_dispatched_total", ["core_id": "WORK_AI_01"]) == 2)
            #expect(metrics.value("orch_tasks_finished_total", ["core_id": "WORK_AI_01", "outcome": "completed"]) == 2)
            #expect(metrics.value("orch_http_request_duration_seconds_count", ["method": "POST", "endpoint": "/dispatch"]) == 2)

            // Every histogram series: the +Inf bucket equals _count, and buckets never decrease.
            let histograms = metrics.types.filter { $0.value == "histogram" }.keys
            #expect(histograms.count >= 2)
            for family in histograms {
                for count in metrics.samples(named: "\(family)_count") {
                    let buckets = metrics.samples(named: "\(family)_bucket").filter { bucket in
                        count.labels.allSatisfy { bucket.labels[$0.key] == $0.value }
                    }
                    let infinity = buckets.first { $0.labels["le"] == "+Inf" }
                    #expect(infinity?.value == count.value, "\(family) \(count.labels)")
                    let ordered = buckets.sorted { (Double($0.labels["le"]!) ?? .infinity) < (Double($1.labels["le"]!) ?? .infinity) }
                    #expect(zip(ordered, ordered.dropFirst()).allSatisfy { $0.value <= $1.value })
                }
            }
            // Every family has help text.
            for family in metrics.types.keys { #expect(!(metrics.helps[family] ?? "").isEmpty, "\(family) has no help") }
        }
    }

    @Test(arguments: TestBackend.all)
    func stateGaugesAndProcessMetrics(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            for core in ["depth_a", "depth_a", "depth_b"] {
                #expect(try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: core)).status == .accepted)
            }
            let lock = try await api.send(
                .post, "/locks", token: token, body: AcquireLockRequest(resource: "metrics-lock", owner: "me", ttl: 60))
            #expect(lock.status == .ok)
            var (_, metrics) = try await Self.scrape(api, token: token)
            #expect(metrics.value("orch_queue_depth", ["core_id": "depth_a"]) == 2)
            #expect(metrics.value("orch_queue_depth", ["core_id": "depth_b"]) == 1)
            #expect((metrics.value("orch_queue_oldest_age_seconds", ["core_id": "depth_a"]) ?? -1) >= 0)
            #expect(metrics.value("orch_locks_held") == 1)
            #expect(metrics.value("orch_lock_waiters") == 0)
            #expect(metrics.value("orch_tasks_running") == 0)
            #expect(metrics.value("orch_lock_wait_seconds_count") == 1)
            #expect((metrics.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((metrics.value("process_open_fds") ?? 0) > 2)
            #expect((metrics.value("process_cpu_seconds_total") ?? 0) > 0)
            let start = try #require(metrics.value("process_start_time_seconds"))
            #expect(start <= Date().timeIntervalSince1970 && start > Date().timeIntervalSince1970 - 86_400)
            #expect(metrics.types["process_cpu_seconds_total"] == "counter")

            // A claimed core's queue drops to 0 instead of keeping its last value.
            let claim = try await api.send(.post, "/cores/depth_b/claim", token: token, body: ClaimRequest(workerID: "w"))
            #expect(try claim.decode(ClaimResponse.self).tasks.count == 1)
            (_, metrics) = try await Self.scrape(api, token: token)
            #expect(metrics.value("orch_queue_depth", ["core_id": "depth_b"]) == 0)
            #expect(metrics.value("orch_tasks_running") == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func openStreamsAreCounted(backend: TestBackend) async throws {
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let token = try await api.adminToken()
            let stream = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            #expect(try await Self.scrape(api, token: token).exposition.value("orch_sse_connections_active") == 1)
            stream.close()
            var open: Double? = 1
            for _ in 0..<50 where open != 0 {
                try await Task.sleep(for: .milliseconds(100))
                open = try await Self.scrape(api, token: token).exposition.value("orch_sse_connections_active")
            }
            #expect(open == 0)
        }
    }

    /// `promtool check metrics` (Prometheus's own linter) and Python's `prometheus_client`
    /// parser accept the exposition. The test command installs both.
    @Test(arguments: TestBackend.all)
    func promtoolAndPrometheusClientAcceptTheExposition(backend: TestBackend) async throws {
        try await TestServer.withApp(WebhookTests.configuration(), backend: backend) { api in
            let token = try await api.adminToken()
            _ = try await Self.runTask(api, token: token, core: "lint_core", duration: 1.5)
            _ = try await api.send(
                .post, "/locks", token: token, body: AcquireLockRequest(resource: "lint", owner: "me", ttl: 60))
            #expect(try await api.request(.get, "/no/such/route").status == .notFound)
            let (text, _) = try await Self.scrape(api, token: token)

            let promtool = try await ScriptRunner.run(["promtool", "check", "metrics"], input: text)
            let complaints = promtool.output + promtool.errors
            #expect(promtool.status == 0, "promtool: \(complaints)")
            #expect(complaints.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(complaints)")

            let script = """
                import sys
                from prometheus_client.parser import text_string_to_metric_families
                families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
                for name in ["orch_http_requests", "orch_task_duration_seconds", "orch_sse_connections_active",
                             "orch_webhook_signatures_verified", "process_cpu_seconds"]:
                    assert name in families, name
                print(len(families))
                """
            let python = try await ScriptRunner.run(["python3", "-c", script], input: text)
            #expect(python.status == 0, "prometheus_client: \(python.errors)")
            #expect((Int(python.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 15)
        }
    }
}
