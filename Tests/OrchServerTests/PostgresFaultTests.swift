import AsyncHTTPClient
import NIOHTTP1
import Foundation
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

/// What `orch serve` does when PostgreSQL is misconfigured at start or goes away under load.
@Suite(.serialized) struct PostgresFaultTests {
    static let adminPassword = "pg-fault-admin-password"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs `orch serve` with `url`; returns its exit status and standard error.
    static func serve(_ url: String) async throws -> ScriptRunner.Result {
        try await ScriptRunner.run(
            [ServerProcess.executable.path, "serve", "--port", "0", "--database-url", url],
            environment: ["ORCH_ADMIN_PASSWORD": adminPassword])
    }

    /// A wrong password, an unknown database, an unreachable port and a role without rights
    /// each stop the server at start: exit 69, one line saying what is wrong, never the password.
    @Test func badDatabaseSettingsStopTheServerWithOneLine() async throws {
        let admin = try await TestPostgres.shared.adminURL()
        let role = "orch_weak_\(UInt32.random(in: 0...UInt32.max))"
        try await TestPostgres.shared.execute("CREATE ROLE \(role) LOGIN PASSWORD 'weak-secret-pw'", in: "postgres")
        try await TestBackend.postgres.withDatabase { database in
            guard case .postgres(let target) = database.url else { return }
            var wrongPassword = admin
            wrongPassword.password = "not-the-password-123"
            var unknownDatabase = admin
            unknownDatabase.database = "no_such_database_here"
            var unreachable = admin
            unreachable.port = 1
            var weak = target
            weak.user = role
            weak.password = "weak-secret-pw"
            let cases: [(PostgresURL, String)] = [
                (wrongPassword, "refused the login"), (unknownDatabase, "does not exist"),
                (unreachable, "cannot reach"), (weak, "lacks rights"),
            ]
            for (url, says) in cases {
                let run = try await Self.serve(url.connectionString)
                let lines = run.errors.split(separator: "\n")
                #expect(run.status == 69, "\(url): \(run.errors)")
                #expect(lines.count == 1 && lines.first?.contains(says) == true, "\(url): \(run.errors)")
                #expect(!run.errors.contains(url.password ?? "-") && !run.output.contains(url.password ?? "-"))
            }
        }
        try await TestPostgres.shared.execute("DROP ROLE \(role)", in: "postgres")
    }

    /// PostgreSQL stopped under a running server: `/health` says the database is unhealthy and
    /// requests answer 503 in the envelope, quickly; started again, the server recovers by itself
    /// and has everything acknowledged before.
    @Test func theServerAnswers503WhileThePostgreSQLServerIsDownAndRecovers() async throws {
        let cluster = FileManager.default.temporaryDirectory.appendingPathComponent("orch-pg-fault-\(UUID().uuidString)")
        let script = Self.repository.appendingPathComponent("scripts/postgres.sh").path
        let started = try await Spawn.run([script, "start", cluster.path])
        #expect(started.status == 0, "\(started.errors)")
        let url = started.output.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            try await Self.outage(url: url, script: script, cluster: cluster.path)
        } catch {
            _ = try? await Spawn.run([script, "stop", cluster.path])
            throw error
        }
        _ = try await Spawn.run([script, "stop", cluster.path])
    }

    static func outage(url: String, script: String, cluster: String) async throws {
        let server = try await ServerProcess.start(environment: ["ORCH_DATABASE_URL": url, "ORCH_ADMIN_PASSWORD": Self.adminPassword])
        defer { server.stop(signal: SIGTERM) }
        let client = HTTPClient.shared
        let login = try await client.json(
            .POST, "\(server.baseURL)/auth/login", body: #"{"username":"admin","password":"\#(adminPassword)"}"#)
        let token = try Timestamp.makeDecoder().decode(LoginResponse.self, from: login.body).accessToken
        let before = try await client.json(.POST, "\(server.baseURL)/dispatch", token: token, body: #"{"core_id":"F"}"#)
        #expect(before.status == 202)
        let taskID = try Timestamp.makeDecoder().decode(DispatchResponse.self, from: before.body).taskID

        #expect(try await Spawn.run([script, "halt", cluster]).status == 0)
        let clock = ContinuousClock()
        let outage = clock.now
        let health = try await client.json(.GET, "\(server.baseURL)/health")
        #expect(health.status == 503)
        let report = try Timestamp.makeDecoder().decode(HealthReport.self, from: health.body)
        #expect(report.components["database"] == .unhealthy)
        for (method, path, body) in [
            (HTTPMethod.GET, "/tasks", nil), (.POST, "/dispatch", #"{"core_id":"F"}"#), (.GET, "/tasks/\(taskID)", nil),
        ] {
            let response = try await client.json(method, "\(server.baseURL)\(path)", token: token, body: body)
            #expect(response.status == 503, "\(path)")
            let error = try Timestamp.makeDecoder().decode(ErrorBody.self, from: response.body).error
            #expect(error.code == "SERVICE_UNAVAILABLE")
        }
        // Each answer came within the store's operation timeout, none hung.
        #expect(clock.now - outage < .seconds(30))

        #expect(try await Spawn.run([script, "resume", cluster]).status == 0)
        var healthy = false
        for _ in 0..<120 where !healthy {
            healthy = try await client.json(.GET, "\(server.baseURL)/health").status == 200
            if !healthy { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(healthy, "the server recovered once PostgreSQL was back")
        let after = try await client.json(.POST, "\(server.baseURL)/dispatch", token: token, body: #"{"core_id":"F"}"#)
        #expect(after.status == 202)
        let earlier = try await client.json(.GET, "\(server.baseURL)/tasks/\(taskID)", token: token)
        #expect(earlier.status == 200)
    }
}
