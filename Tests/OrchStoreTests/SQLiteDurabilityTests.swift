import Foundation
import GRDB
import Synchronization
import OrchModels
import Testing

@testable import OrchStore

/// Serialized: the checkpoint tests measure the log while they write, and each other's writes
/// would change what they see.
@Suite(.serialized) struct SQLiteDurabilityTests {
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
            // A passive checkpoint completes only when no commit lands while it copies: every
            // eighth round leaves it the time to (writes under load that leave it none are the
            // next test's).
            try await Task.sleep(for: .milliseconds(round % 8 == 7 ? 300 : 30))
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

    /// Readers that overlap without a pause never let the writer start the log again; past
    /// `restartAbove` frames the checkpointer empties it anyway (TRUNCATE), so the log stays
    /// near that size instead of holding everything written (about 12 MiB here).
    @Test(arguments: [100])
    func aLogThatReadersNeverLeaveIsStillEmptied(restartAbove: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("r.sqlite").path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let pool = try DatabasePool(path: path, configuration: configuration)
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: "CREATE TABLE t (v BLOB)")
        }
        let checkpointer = try WALCheckpointer(path: path, interval: .milliseconds(10), restartAbove: restartAbove)
        final class Flag: Sendable { let value = Atomic<Bool>(true) }
        let writing = Flag()
        var largest = 0
        // Two readers in turn, each in a read transaction for 4 ms, 2 ms apart: one is always
        // in the log.
        let readers = (0..<2).map { offset in
            Task.detached {
                try await Task.sleep(for: .milliseconds(2 * offset))
                while writing.value.load(ordering: .relaxed) {
                    try await pool.read { db in
                        _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM t")
                        Thread.sleep(forTimeInterval: 0.004)
                    }
                }
            }
        }
        let blob = Data(repeating: 7, count: 32 << 10)
        for _ in 0..<300 {
            try await pool.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: [blob]) }
            checkpointer.committed()
            let size = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
            largest = max(largest, size)
            try await Task.sleep(for: .milliseconds(1))
        }
        writing.value.store(false, ordering: .relaxed)
        for reader in readers { try await reader.value }
        await checkpointer.stop()
        #expect(checkpointer.truncations > 0)
        
        #expect(largest < 4 << 20, "the WAL reached \(largest) bytes")
        try pool.close()
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
