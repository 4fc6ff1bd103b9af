import Foundation
import OrchStore
import OrchTestSupport

/// A store backend the conformance suite runs against.
struct StoreBackend: Sendable, CustomTestStringConvertible {
    let name: String
    let open: @Sendable (URL) async throws -> (store: any Store, database: TestDatabase?)

    var testDescription: String { name }

    static let all: [StoreBackend] = [
        StoreBackend(name: "sqlite-file") { directory in
            (try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("orch.sqlite").path)), nil)
        },
        StoreBackend(name: "sqlite-memory") { _ in (try SQLiteStore(location: .sqliteMemory), nil) },
        postgres,
    ]

    /// A fresh PostgreSQL database, also for the tests of PostgreSQL alone.
    static let postgres = StoreBackend(name: "postgres") { _ in
        let database = try await TestBackend.postgres.freshDatabase()
        return (try await database.open(), database)
    }

    /// Runs `body` with a fresh, empty store (in a temporary directory, or a new PostgreSQL
    /// database) removed afterwards.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (store, database) = try await open(directory)
        do {
            try await body(store)
        } catch {
            try? await store.close()
            await database?.drop()
            throw error
        }
        try? await store.close()
        await database?.drop()
    }
}

import Testing
