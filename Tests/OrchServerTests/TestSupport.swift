import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// Builds servers for tests and talks to them.
enum TestServer {
    static let jwtSecret = "test-secret-0123456789abcdef0123456789abcdef"
    static let adminPassword = "admin-password-1"

    /// A configuration for tests: in-memory store unless told otherwise, a known admin password
    /// and JWT secret, and the cheapest bcrypt cost so that tests stay fast.
    static func configuration(database: DatabaseURL = .sqliteMemory) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.databaseURL = database
        configuration.jwtSecret = jwtSecret
        configuration.adminPassword = adminPassword
        configuration.bcryptCost = 4
        configuration.logLevel = .critical
        configuration.port = 0
        // Other features are tested without limits; RateLimitTests sets its own.
        configuration.rateLimits = ServerConfiguration.defaultRateLimits.mapValues { _ in 0 }
        // Alerts that depend on how loaded the test machine is (a slow database round trip, the
        // process's memory) would put system.alert events into streams that tests count;
        // MonitorTests sets its own thresholds.
        configuration.alertThresholds.databaseLatencyMilliseconds = 0
        configuration.alertThresholds.memoryMegabytes = 0
        return configuration
    }

    /// Runs `body` against an application on `store`, by default a fresh database of
    /// `backend` (or the one `configuration` names, when it names one other than the default
    /// in-memory SQLite).
    static func withApp(
        _ configuration: ServerConfiguration = configuration(), backend: TestBackend = .sqlite, store: (any Store)? = nil,
        _ body: @escaping @Sendable (APIClient) async throws -> Void
    ) async throws {
        try await withServer(configuration, backend: backend, store: store) { api, _ in try await body(api) }
    }

    /// As ``withApp(_:backend:store:_:)``, also handing over the server's parts.
    static func withServer(
        _ configuration: ServerConfiguration = configuration(), backend: TestBackend = .sqlite, store: (any Store)? = nil,
        testing: TestingSetup = .router, logger: Logger = Logger(label: "orch"),
        _ body: @escaping @Sendable (APIClient, OrchServerParts) async throws -> Void
    ) async throws {
        if let store {
            try await run(configuration, store: store, testing: testing, logger: logger, body)
        } else if configuration.databaseURL != .sqliteMemory {
            let store = try await openStore(configuration.databaseURL)
            try await run(configuration, store: store, testing: testing, logger: logger, body)
        } else {
            try await backend.withDatabase { database in
                var configuration = configuration
                configuration.databaseURL = database.url
                try await run(configuration, store: try await database.open(), testing: testing, logger: logger, body)
            }
        }
    }

    /// Runs `body` with a database that outlives one server (for restart tests): a SQLite file
    /// in a temporary folder, or a fresh PostgreSQL database; removed afterwards.
    static func withDurableDatabase(_ backend: TestBackend, _ body: (DatabaseURL) async throws -> Void) async throws {
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try await body(.sqliteFile(path: directory.appendingPathComponent("orch.sqlite").path))
        case .postgres:
            try await backend.withDatabase { database in try await body(database.url) }
        }
    }

    private static func run(
        _ configuration: ServerConfiguration, store: any Store, testing: TestingSetup, logger: Logger,
        _ body: @escaping @Sendable (APIClient, OrchServerParts) async throws -> Void
    ) async throws {
        let parts = try await buildServer(configuration, store: store, logger: logger)
        do {
            try await parts.application.test(testing) { client in
                try await body(APIClient(client: client), parts)
            }
        } catch {
            try? await store.close()
            throw error
        }
        try? await store.close()
    }
}

/// A small JSON client over HummingbirdTesting's client.
struct APIClient: Sendable {
    let client: any TestClientProtocol

    /// Sends a request; `json` is sent as the body verbatim.
    func request(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }

    /// Sends `body` encoded as JSON.
    func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, body: some Encodable) async throws
        -> TestResponse
    {
        let data = try Timestamp.makeEncoder().encode(body)
        return try await request(method, uri, token: token, json: String(decoding: data, as: UTF8.self))
    }

    /// Logs in and returns the access token, failing the test when login fails.
    func login(_ username: String, _ password: String) async throws -> String {
        let response = try await send(.post, "/auth/login", body: LoginRequest(username: username, password: password))
        #expect(response.status == .ok, "login of \(username) failed: \(String(buffer: response.body))")
        return try response.decode(LoginResponse.self).accessToken
    }

    func adminToken() async throws -> String {
        try await login("admin", TestServer.adminPassword)
    }

    /// Creates a user with `role` (as admin) and returns them with a fresh token.
    func createUser(_ username: String, role: Role, adminToken: String) async throws -> (user: User, token: String) {
        let response = try await send(
            .post, "/users", token: adminToken,
            body: CreateUserRequest(username: username, email: "\(username)@example.com", password: "password-\(username)", role: role))
        #expect(response.status == .created, "creating \(username): \(String(buffer: response.body))")
        let user = try response.decode(User.self)
        return (user, try await login(username, "password-\(username)"))
    }
}

extension TestResponse {
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try Timestamp.makeDecoder().decode(T.self, from: Data(buffer: body))
    }

    /// The error envelope of this response.
    var error: ErrorBody.Content {
        get throws { try decode(ErrorBody.self).error }
    }

    var text: String { String(buffer: body) }
}
