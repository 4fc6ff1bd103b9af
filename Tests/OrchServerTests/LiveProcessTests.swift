import AsyncHTTPClient
import Foundation
import NIOHTTP1
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

/// Tests against a real `orch serve` process over a real socket.
@Suite(.serialized) struct LiveProcessTests {
    static let adminPassword = "live-admin-password"

    /// A database for a server process (a SQLite file, or a fresh PostgreSQL database) and a
    /// folder for its files, both removed after `body`.
    static func withDatabase(
        _ backend: TestBackend, _ body: (_ database: (directory: URL, url: String)) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        switch backend {
        case .sqlite:
            try await body((directory, "sqlite://\(directory.appendingPathComponent("live.sqlite").path)"))
        case .postgres:
            try await backend.withDatabase { database in try await body((directory, database.environmentValue)) }
        }
    }

    func login(_ client: HTTPClient, _ server: ServerProcess) async throws -> String {
        let response = try await client.json(
            .POST, "\(server.baseURL)/auth/login", body: #"{"username":"admin","password":"\#(Self.adminPassword)"}"#)
        #expect(response.status == 200)
        return try Timestamp.makeDecoder().decode(LoginResponse.self, from: response.body).accessToken
    }

    /// Every user acknowledged with 201 before `kill -9` is there after a restart.
    @Test(arguments: TestBackend.all) func killNineRightAfterCreatedLosesNothing(backend: TestBackend) async throws {
        try await Self.withDatabase(backend) { database in
            let environment = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword]
            let client = HTTPClient.shared

            let server = try await ServerProcess.start(environment: environment)
            let token = try await login(client, server)
            let acknowledged = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<24 {
                    group.addTask {
                        let response = try await client.json(
                            .POST, "\(server.baseURL)/users", token: token,
                            body: #"{"username":"durable\#(index)","email":"durable\#(index)@example.com","password":"password-\#(index)","role":"viewer"}"#)
                        guard response.status == 201 else { return nil }
                        return try Timestamp.makeDecoder().decode(User.self, from: response.body).userID
                    }
                }
                return try await group.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
            }
            await server.stopped(signal: SIGKILL)
            #expect(acknowledged.count == 24)

            let restarted = try await ServerProcess.start(environment: environment)
            let newToken = try await login(client, restarted)
            let list = try await client.json(.GET, "\(restarted.baseURL)/users?limit=500", token: newToken)
            let users = try Timestamp.makeDecoder().decode(UserList.self, from: list.body)
            #expect(Set(acknowledged).isSubset(of: Set(users.users.map(\.userID))))
            await restarted.stopped(signal: SIGTERM)
        }
    }

    @Test(arguments: TestBackend.all, [SIGTERM, SIGINT])
    func signalShutsDownGracefullyWithExitZero(backend: TestBackend, signal: Int32) async throws {
        try await Self.withDatabase(backend) { database in
            let server = try await ServerProcess.start(environment: ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword])
            let client = HTTPClient.shared
            #expect(try await client.json(.GET, "\(server.baseURL)/health").status == 200)
            #expect(await server.stopped(signal: signal) == 0)
        }
    }

    /// The request log line is buffered (written in batches) and still reaches standard error
    /// when the server stops.
    @Test(arguments: TestBackend.all) func requestLogLinesAreWrittenByShutdown(backend: TestBackend) async throws {
        try await Self.withDatabase(backend) { database in
            let log = database.directory.appendingPathComponent("stderr.log")
            let server = try await ServerProcess.start(
                environment: ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword, "ORCH_LOG_LEVEL": "info"],
                standardErrorFile: log)
            var request = HTTPClientRequest(url: "\(server.baseURL)/health")
            request.headers.add(name: "X-Request-ID", value: "log-check-7")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 200)
            #expect(await server.stopped(signal: SIGTERM) == 0)
            let text = try String(contentsOf: log, encoding: .utf8)
            let line = text.split(separator: "\n").first { $0.contains("request_id=log-check-7") }
            #expect(line?.contains(" info ") == true && line?.contains("route=/health") == true, "\(text)")
        }
    }

    /// Open event streams end cleanly on SIGTERM instead of holding the shutdown up.
    @Test(arguments: TestBackend.all) func shutdownClosesOpenEventStreams(backend: TestBackend) async throws {
        try await Self.withDatabase(backend) { database in
            let server = try await ServerProcess.start(environment: ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword])
            let token = try await login(HTTPClient.shared, server)
            let streams = try await withThrowingTaskGroup(of: SSEConnection.self) { group in
                for _ in 0..<3 {
                    group.addTask { try await SSEConnection.open(port: server.port, headers: [("Authorization", "Bearer \(token)")]) }
                }
                return try await group.reduce(into: [SSEConnection]()) { $0.append($1) }
            }
            for stream in streams { #expect(await stream.waitUntil { !$0.isEmpty }) }
            #expect(await server.stopped(signal: SIGTERM) == 0)
            for stream in streams { #expect(await stream.waitForEnd(timeout: .seconds(5))) }
        }
    }

    @Test(arguments: TestBackend.all) func firstStartWithoutPasswordPrintsAGeneratedOneOnce(backend: TestBackend) async throws {
        try await Self.withDatabase(backend) { database in
            let environment = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_USERNAME": "root_admin"]
            let server = try await ServerProcess.start(environment: environment)
            let line = try #require(server.outputText.split(separator: "\n").first { $0.contains("generated password") })
            let password = String(line.split(separator: " ").last ?? "")
            #expect(password.count == 24)
            let client = HTTPClient.shared
            let login = try await client.json(
                .POST, "\(server.baseURL)/auth/login", body: #"{"username":"root_admin","password":"\#(password)"}"#)
            #expect(login.status == 200)
            await server.stopped(signal: SIGTERM)

            let again = try await ServerProcess.start(environment: environment)
            #expect(!again.outputText.contains("generated password"))
            await again.stopped(signal: SIGTERM)
        }
    }

    /// A second `orch serve` on a SQLite file in use stops at start (exit 69, one line naming the
    /// file and the server using it) while the first keeps serving; a reader still opens the
    /// file, and once the first server is gone, even by `kill -9`, a new one starts on it.
    @Test func aSecondServerOnASQLiteFileInUseRefusesToStart() async throws {
        try await Self.withDatabase(.sqlite) { database in
            let path = database.directory.appendingPathComponent("live.sqlite").path
            let environment = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword]
            let first = try await ServerProcess.start(environment: environment)
            let second = try await ScriptRunner.run(
                [ServerProcess.executable.path, "serve", "--port", "0"], environment: environment, timeout: .seconds(20))
            let lines = second.errors.split(separator: "\n")
            #expect(second.status == 69, "\(second.errors)")
            #expect(lines.count == 1 && lines.first?.contains(path) == true, "\(second.errors)")
            #expect(lines.first?.contains("pid \(first.pid)") == true, "\(second.errors)")
            #expect(try await HTTPClient.shared.json(.GET, "\(first.baseURL)/health").status == 200)
            let reader = try SQLiteStore(location: .sqliteFile(path: path))
            #expect(try await reader.countUsers() == 1)
            try await reader.close()
            await first.stopped(signal: SIGKILL)
            let next = try await ServerProcess.start(environment: environment)
            #expect(try await HTTPClient.shared.json(.GET, "\(next.baseURL)/health").status == 200)
        }
    }

    /// The JWT secret is one per database: a second node (PostgreSQL) accepts the first one's
    /// tokens; a node with another `ORCH_JWT_SECRET`, or none when the nodes use one, stops at
    /// start with one line (exit 78); `ORCH_JWT_SECRET_ROTATE=true` replaces the secret, and
    /// tokens signed with the old one are refused from then on.
    @Test(arguments: TestBackend.all) func oneJWTSecretPerDatabase(backend: TestBackend) async throws {
        try await Self.withDatabase(backend) { database in
            let client = HTTPClient.shared
            let base = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": Self.adminPassword]
            func refused(_ environment: [String: String], saying: String) async throws {
                let run = try await ScriptRunner.run(
                    [ServerProcess.executable.path, "serve", "--port", "0"], environment: base.merging(environment) { $1 },
                    timeout: .seconds(20))
                let lines = run.errors.split(separator: "\n")
                #expect(run.status == 78, "\(run.errors)")
                #expect(lines.count == 1 && lines.first?.contains(saying) == true, "\(run.errors)")
                #expect(!run.errors.contains("another-secret-of-32-bytes-at-least!!"))
            }
            var first: ServerProcess? = try await ServerProcess.start(environment: base)
            let generatedToken = try await login(client, first!)
            if backend == .postgres {
                let second = try await ServerProcess.start(environment: base)
                #expect(try await client.json(.GET, "\(second.baseURL)/auth/me", token: generatedToken).status == 200)
                try await refused(["ORCH_JWT_SECRET": "another-secret-of-32-bytes-at-least!!"], saying: "differs")
                #expect(try await client.json(.GET, "\(first!.baseURL)/auth/me", token: generatedToken).status == 200)
            }
            await first?.stopped(signal: SIGTERM)
            first = nil
            try await refused(["ORCH_JWT_SECRET": "another-secret-of-32-bytes-at-least!!"], saying: "differs")

            let configured = ["ORCH_JWT_SECRET": "another-secret-of-32-bytes-at-least!!"]
            let rotated = try await ServerProcess.start(environment: base.merging(configured.merging(["ORCH_JWT_SECRET_ROTATE": "true"]) { $1 }) { $1 })
            #expect(try await client.json(.GET, "\(rotated.baseURL)/auth/me", token: generatedToken).status == 401)
            let configuredToken = try await login(client, rotated)
            await rotated.stopped(signal: SIGTERM)

            let again = try await ServerProcess.start(environment: base.merging(configured) { $1 })
            #expect(try await client.json(.GET, "\(again.baseURL)/auth/me", token: configuredToken).status == 200)
            await again.stopped(signal: SIGTERM)
            try await refused([:], saying: "has no ORCH_JWT_SECRET")
        }
    }
}
