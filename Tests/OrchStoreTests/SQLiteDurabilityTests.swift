import Foundation
import GRDB
import OrchModels
import Testing

@testable import OrchStore

@Suite struct SQLiteDurabilityTests {
    @Test func fileStoreUsesWALFullSyncForeignKeysAndBusyTimeout() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("a.sqlite").path))
        let pragmas = try await store.write { db in
            (
                try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                try Int.fetchOne(db, sql: "PRAGMA foreign_keys"),
                try Int.fetchOne(db, sql: "PRAGMA busy_timeout")
            )
        }
        #expect(pragmas.0 == "wal")
        #expect(pragmas.1 == 2)  // FULL
        #expect(pragmas.2 == 1)
        #expect(pragmas.3 == 5000)
        try await store.close()
    }

    /// The writer never checkpoints inside a commit; the store's own checkpointer copies the log
    /// back while writes go on, so the log restarts and stays far smaller than what was written.
    @Test func theLogIsCheckpointedOffTheWriterAndStaysSmall() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("w.sqlite").path
        let store = try SQLiteStore(location: .sqliteFile(path: path))
        #expect(try await store.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") } == 0)
        // 40 rounds of 1 MiB: without a checkpoint the log would hold all 40 MiB.
        let value = String(repeating: "x", count: 1 << 20)
        for round in 0..<40 {
            try await store.write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", arguments: ["bulk-\(round % 4)", value])
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        let checkpointer = try #require(store.checkpointer)
        for _ in 0..<200 where checkpointer.completeCheckpoints == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(checkpointer.completeCheckpoints > 0)
        let logSize = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
        #expect(logSize < 20 << 20, "the WAL is \(logSize) bytes")
        try await store.close()
    }

    /// A new file is made with `auto_vacuum=incremental`, and `reclaimSpace()` returns the pages
    /// deleted rows freed: the file shrinks.
    @Test func aNewFileGivesFreedPagesBack() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("v.sqlite").path))
        #expect(try await store.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
        let value = String(repeating: "x", count: 4 << 20)
        try await store.write { db in
            try db.execute(sql: "INSERT INTO settings (key, value) VALUES ('big', ?)", arguments: [value])
        }
        let grown = try await store.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        try await store.write { db in try db.execute(sql: "DELETE FROM settings WHERE key = 'big'") }
        #expect(try await store.read { db in try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0 } > 500)
        try await store.reclaimSpace()
        let pages = try await store.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
        }
        #expect(pages.1 == 0)
        #expect(pages.0 < grown - 500)
        try await store.close()
    }

    @Test func dataSurvivesReopeningTheFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let location = DatabaseURL.sqliteFile(path: directory.appendingPathComponent("b.sqlite").path)
        let user = makeUser("persisted")
        do {
            let store = try SQLiteStore(location: location)
            try await store.createUser(user)
            _ = try await store.insertSettingIfAbsent("jwt_secret", value: "kept")
            try await store.close()
        }
        let reopened = try SQLiteStore(location: location)
        #expect(try await reopened.user(id: user.id)?.username == "persisted")
        #expect(try await reopened.setting("jwt_secret") == "kept")
        try await reopened.close()
    }

    @Test func migrationsAreRecordedAndNotReapplied() async throws {
        let store = try SQLiteStore(location: .sqliteMemory)
        let applied = try await store.read { db in try SQLiteMigrations.migrator.appliedIdentifiers(db) }
        #expect(applied.contains("001_settings_and_users"))
        try SQLiteMigrations.migrator.migrate(store.database)
        try await store.close()
    }

    @Test(arguments: ["sqlite://orch.sqlite", "sqlite::memory:", "postgres://u:secret@db:5432/orch", "mysql://x", "sqlite://"])
    func databaseURLParsesKnownSchemesAndMasksPasswords(text: String) {
        let url = DatabaseURL(text)
        switch text {
        case "sqlite://orch.sqlite": #expect(url == .sqliteFile(path: "orch.sqlite"))
        case "sqlite::memory:": #expect(url == .sqliteMemory)
        case "postgres://u:secret@db:5432/orch": #expect(url?.description == "postgres://u:***@db:5432/orch")
        default: #expect(url == nil)
        }
    }
}
