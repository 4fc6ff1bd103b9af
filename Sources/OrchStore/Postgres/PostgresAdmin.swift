import Foundation
import Logging
import PostgresNIO

/// Creating and dropping whole databases on a PostgreSQL server (for `orch bench`, which gives
/// each server it starts a fresh database). The role in the URL needs `CREATEDB`.
public enum PostgresAdmin {
    /// Creates a database called `name` (letters, digits and `_` only) next to `server`'s;
    /// returns its URL.
    public static func createDatabase(_ name: String, on server: PostgresURL) async throws -> PostgresURL {
        try await execute("CREATE DATABASE \(try identifier(name))", on: server)
        var url = server
        url.database = name
        return url
    }

    /// Drops the database `name` of `server`, closing its connections.
    public static func dropDatabase(_ name: String, on server: PostgresURL) async throws {
        try await execute("DROP DATABASE IF EXISTS \(try identifier(name)) WITH (FORCE)", on: server)
    }

    /// Vacuums and analyzes the database at `url`, then asks for a checkpoint when the role may,
    /// so that a benchmark after a bulk load measures the server, not the load's aftermath
    /// (autovacuum and a WAL-triggered checkpoint of a million new rows).
    public static func settle(_ url: PostgresURL) async throws {
        try await execute("VACUUM (ANALYZE)", on: url)
        try? await execute("CHECKPOINT", on: url)
    }

    private static func identifier(_ name: String) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw PostgresServerError(state: "42602", message: "invalid database name \(name)")
        }
        return name
    }

    private static func execute(_ sql: String, on server: PostgresURL) async throws {
        let logger = Logger(label: "orch.postgres.admin")
        let configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.user, password: server.password,
            database: server.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        } catch {
            try? await connection.close()
            throw PostgresFault.map(error)
        }
        try await connection.close()
    }
}
