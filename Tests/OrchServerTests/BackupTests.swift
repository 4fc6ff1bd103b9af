import AsyncHTTPClient
import Foundation
import GRDB
import OrchModels
import OrchTestSupport
import Synchronization
import Testing

@testable import OrchServer

/// `orch backup`: a consistent copy of a live SQLite database while dispatches keep coming.
@Suite struct BackupTests {
    /// What the dispatchers have had acknowledged, and when they stop.
    final class Dispatching: Sendable {
        let acknowledged = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
    }

    @Test func aBackupTakenUnderDispatchesHoldsEveryTaskCommittedBeforeIt() async throws {
        try await LiveProcessTests.withDatabase(.sqlite) { database in
            let environment = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": LiveProcessTests.adminPassword]
            let client = HTTPClient.shared
            let server = try await ServerProcess.start(environment: environment)
            let token = try await LiveProcessTests().login(client, server)
            let state = Dispatching()
            let copy = database.directory.appendingPathComponent("copy.sqlite").path
            let (before, backup) = try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !state.stop.load(ordering: .relaxed) {
                            let id = try await MultiNodeTests.dispatch(server, token, core: "backup")
                            state.acknowledged.withLock { $0.append(id) }
                        }
                    }
                }
                while state.acknowledged.withLock({ $0.count }) < 300 { try await Task.sleep(for: .milliseconds(20)) }
                // Everything acknowledged up to here was committed before the backup began.
                let before = state.acknowledged.withLock { $0 }
                let backup = try await ScriptRunner.run(
                    [ServerProcess.executable.path, "backup", copy], environment: ["ORCH_DATABASE_URL": database.url])
                let duringBackup = state.acknowledged.withLock { $0.count }
                while state.acknowledged.withLock({ $0.count }) < duringBackup + 50 { try await Task.sleep(for: .milliseconds(20)) }
                state.stop.store(true, ordering: .relaxed)
                try await group.waitForAll()
                return (before, backup)
            }
            #expect(backup.status == 0, "\(backup.output) \(backup.errors)")
            #expect(backup.output.contains("backed up"))
            // The server kept serving throughout, and still does.
            #expect(try await client.json(.GET, "\(server.baseURL)/health").status == 200)
            await server.stopped(signal: SIGTERM)

            // A server started on the copy has every task acknowledged before the backup.
            let restored = try await ServerProcess.start(
                environment: ["ORCH_DATABASE_URL": "sqlite://\(copy)", "ORCH_ADMIN_PASSWORD": LiveProcessTests.adminPassword])
            let restoredToken = try await LiveProcessTests().login(client, restored)
            for id in before.shuffled().prefix(25) {
                #expect(try await client.json(.GET, "\(restored.baseURL)/tasks/\(id)", token: restoredToken).status == 200)
            }
            await restored.stopped(signal: SIGTERM)
            let ids = try await DatabaseQueue(path: copy).read { db in try Set(String.fetchAll(db, sql: "SELECT id FROM tasks")) }
            #expect(Set(before).isSubset(of: ids))
            #expect(ids.count >= before.count)
        }
    }

    @Test func aBackupOfPostgreSQLPointsToPgDumpAndAnExistingFileIsNotOverwritten() async throws {
        let postgres = try await ScriptRunner.run(
            [ServerProcess.executable.path, "backup", "/tmp/never-written.sqlite", "--database-url", "postgres://u:secret@db:5432/orch"])
        #expect(postgres.status == 64)
        #expect(postgres.errors.contains("pg_dump"))
        #expect(!postgres.errors.contains("secret"))
        try await LiveProcessTests.withDatabase(.sqlite) { database in
            let existing = database.directory.appendingPathComponent("existing.sqlite")
            try Data("keep".utf8).write(to: existing)
            let environment = ["ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": LiveProcessTests.adminPassword]
            let server = try await ServerProcess.start(environment: environment)
            let refused = try await ScriptRunner.run(
                [ServerProcess.executable.path, "backup", existing.path], environment: ["ORCH_DATABASE_URL": database.url])
            #expect(refused.status == 1)
            #expect(try String(contentsOf: existing, encoding: .utf8) == "keep")
            await server.stopped(signal: SIGTERM)
            // With no server running the file is copied too.
            let copy = database.directory.appendingPathComponent("offline.sqlite").path
            let offline = try await ScriptRunner.run(
                [ServerProcess.executable.path, "backup", copy], environment: ["ORCH_DATABASE_URL": database.url])
            #expect(offline.status == 0, "\(offline.errors)")
            let users = try await DatabaseQueue(path: copy).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM users") }
            #expect(users == 1)
        }
    }
}
