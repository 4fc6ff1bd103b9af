import Foundation
import OrchStore

/// A store backend the conformance suite runs against.
struct StoreBackend: Sendable, CustomTestStringConvertible {
    let name: String
    let open: @Sendable (URL) throws -> any Store

    var testDescription: String { name }

    static let all: [StoreBackend] = [
        StoreBackend(name: "sqlite-file") { directory in
            try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("orch.sqlite").path))
        },
        StoreBackend(name: "sqlite-memory") { _ in try SQLiteStore(location: .sqliteMemory) },
    ]

    /// Runs `body` with a fresh, empty store in a temporary directory removed afterwards.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try open(directory)
        try await body(store)
        try? await store.close()
    }
}

import Testing
