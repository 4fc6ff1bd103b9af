import Foundation
import GRDB
import Testing

@testable import OrchStore

/// Writes sharing one transaction: each caller gets its own outcome, and a failing write is
/// undone alone.
@Suite struct GroupCommitTests {
    struct Refused: Error, Equatable { let index: Int }

    @Test func aFailingWriteInASharedBatchIsUndoneAloneAndTheOthersCommit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-gc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("gc.sqlite").path))
        // A slow first write holds the writer, so the next 30 queue up and form one batch.
        async let slow: Void = store.write { db in
            Thread.sleep(forTimeInterval: 0.3)
            try db.execute(sql: "INSERT INTO settings (key, value) VALUES ('slow', 'x')")
        }
        try await Task.sleep(for: .milliseconds(50))
        let outcomes = await withTaskGroup(of: (Int, Result<Int, Refused>).self) { group in
            for index in 0..<30 {
                group.addTask {
                    do {
                        let value = try await store.write { db -> Int in
                            try db.execute(sql: "INSERT INTO settings (key, value) VALUES (?, ?)", arguments: ["k\(index)", "v"])
                            if index % 7 == 3 { throw Refused(index: index) }
                            return index * 10
                        }
                        return (index, .success(value))
                    } catch let error as Refused {
                        return (index, .failure(error))
                    } catch {
                        Issue.record("unexpected \(error)")
                        return (index, .failure(Refused(index: -1)))
                    }
                }
            }
            var all: [Int: Result<Int, Refused>] = [:]
            for await (index, outcome) in group { all[index] = outcome }
            return all
        }
        try await slow
        for index in 0..<30 {
            let expected: Result<Int, Refused> = index % 7 == 3 ? .failure(Refused(index: index)) : .success(index * 10)
            #expect(outcomes[index] == expected, "write \(index)")
        }
        let keys = try await store.read { db in try String.fetchAll(db, sql: "SELECT key FROM settings WHERE key LIKE 'k%'") }
        #expect(Set(keys) == Set((0..<30).filter { $0 % 7 != 3 }.map { "k\($0)" }))
        // A write failing alone leaves nothing either, and the store goes on.
        await #expect(throws: Refused.self) {
            try await store.write { db in
                try db.execute(sql: "INSERT INTO settings (key, value) VALUES ('alone', 'x')")
                throw Refused(index: 99)
            }
        }
        #expect(try await store.setting("alone") == nil)
        #expect(try await store.setting("slow") == "x")
        try await store.close()
    }
}
