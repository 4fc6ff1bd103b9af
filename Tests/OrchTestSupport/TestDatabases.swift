import Foundation
import Logging
import OrchStore
import PostgresNIO

/// The backends every store and server test runs against.
public enum TestBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public static let all = allCases

    public var description: String { rawValue }

    /// A fresh, empty database for one test: an in-memory SQLite database, or a new PostgreSQL
    /// database with the schema applied. ``TestDatabase/drop()`` removes it afterwards.
    public func freshDatabase() async throws -> TestDatabase {
        switch self {
        case .sqlite: return TestDatabase(url: .sqliteMemory, name: nil)
        case .postgres: return try await TestPostgres.shared.freshDatabase()
        }
    }

    /// Runs `body` with a fresh database of this backend, dropped afterwards.
    public func withDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        let database = try await freshDatabase()
        do {
            let result = try await body(database)
            await database.drop()
            return result
        } catch {
            await database.drop()
            throw error
        }
    }
}

/// One test's database.
public struct TestDatabase: Sendable {
    public let url: DatabaseURL
    /// The PostgreSQL database's name, `nil` for SQLite.
    let name: String?

    /// Opens a store on it (a small connection pool on PostgreSQL).
    public func open() async throws -> any Store {
        switch url {
        case .sqliteFile, .sqliteMemory: return try SQLiteStore(location: url)
        case .postgres(let postgres): return try await PostgresStore.open(postgres, poolSize: 4)
        }
    }

    /// The URL as `ORCH_DATABASE_URL` takes it (with the password: for the server processes tests start).
    public var environmentValue: String {
        switch url {
        case .sqliteFile(let path): return "sqlite://\(path)"
        case .sqliteMemory: return "sqlite::memory:"
        case .postgres(let postgres): return postgres.connectionString
        }
    }

    /// Runs one SQL statement in the PostgreSQL database behind the server's back (to break it on purpose).
    public func executeBehindTheServersBack(_ sql: String) async throws {
        guard let name else { return }
        try await TestPostgres.shared.execute(sql, in: name)
    }

    public func drop() async {
        guard let name else { return }
        await TestPostgres.shared.drop(name)
    }
}

/// The throwaway PostgreSQL server that `scripts/test.sh` starts, named by
/// `ORCH_TEST_POSTGRES_URL` (a superuser on its `postgres` database). Without it the
/// PostgreSQL tests fail, saying so: they are never skipped.
public actor TestPostgres {
    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    public static let shared = TestPostgres()

    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "ORCH_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts a PostgreSQL server"
        }
    }

    /// How many test databases may be in use at once: the tests run in parallel, and without a
    /// bound their connections (and the server's work) would swamp a two-core machine.
    static let concurrentDatabases = 6
    private var inUse = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var client: PostgresClient?
    private var runner: Task<Void, Never>?
    /// Made once: the actor is reentrant, so concurrent first callers share this task.
    private var template: Task<String, any Error>?
    private var admin: PostgresURL?

    /// The server's admin URL.
    public func adminURL() throws -> PostgresURL {
        if let admin { return admin }
        guard let text = ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"], !text.isEmpty else { throw Missing() }
        var url = try PostgresURL(parsing: text)
        url.tlsMode = .disable
        admin = url
        return url
    }

    private func adminClient() throws -> PostgresClient {
        if let client { return client }
        let url = try adminURL()
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        configuration.options.maximumConnections = 4
        let client = PostgresClient(configuration: configuration)
        runner = Task { await client.run() }
        self.client = client
        return client
    }

    /// A database made from a template that has every migration applied (made once per test run).
    func freshDatabase() async throws -> TestDatabase {
        if inUse >= Self.concurrentDatabases {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            inUse += 1
        }
        do {
            return try await makeDatabase()
        } catch {
            release()
            throw error
        }
    }

    /// Hands the caller's slot to the next waiter, or frees it.
    private func release() {
        if waiters.isEmpty {
            inUse -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    private func makeDatabase() async throws -> TestDatabase {
        let client = try adminClient()
        let template = try await templateName(client)
        let name = "orch_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        try await createDatabase(name, template: template, client)
        var url = try adminURL()
        url.database = name
        return TestDatabase(url: .postgres(url), name: name)
    }

    private func templateName(_ client: PostgresClient) async throws -> String {
        if let template { return try await template.value }
        let url = try adminURL()
        let making = Task { try await Self.makeTemplate(client, admin: url) }
        template = making
        return try await making.value
    }

    private static func makeTemplate(_ client: PostgresClient, admin: PostgresURL) async throws -> String {
        let name = "orch_template_\(ProcessInfo.processInfo.processIdentifier)"
        try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        var url = admin
        url.database = name
        do {
            let store = try await PostgresStore.open(url, poolSize: 1)
            try await store.close()
        } catch {
            throw SetupError(description: "creating the template database: \(String(reflecting: error))")
        }
        return name
    }

    private func createDatabase(_ name: String, template: String, _ client: PostgresClient) async throws {
        // CREATE DATABASE refuses while another one is being copied from the same template
        // ("source database is being accessed by other users"): a few tries.
        var attempt = 0
        while true {
            do {
                try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template)"))
                return
            } catch {
                attempt += 1
                if attempt >= 20 { throw error }
                try await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
    }

    /// Runs one SQL statement in `database` of the test server.
    public func execute(_ sql: String, in database: String) async throws {
        try await execute([sql], in: database, pausingBeforeLast: .zero)
    }

    /// Runs `statements` on one connection of `database`, pausing `pause` before the last one
    /// (to hold a transaction open).
    public func execute(_ statements: [String], in database: String, pausingBeforeLast pause: Duration) async throws {
        var url = try adminURL()
        url.database = database
        let logger = Logger(label: "orch.test")
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: url.host, port: url.port, username: url.user, password: url.password, database: database, tls: .disable),
            id: 2, logger: logger)
        do {
            for (index, statement) in statements.enumerated() {
                if index == statements.count - 1 { try await Task.sleep(for: pause) }
                _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    func drop(_ name: String) async {
        defer { release() }
        guard let client else { return }
        _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
    }
}
