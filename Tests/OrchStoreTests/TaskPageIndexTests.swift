import Foundation
import GRDB
import OrchModels
import Testing

@testable import OrchStore

/// The `GET /tasks` pages the README promises are read in order from an index: SQLite's plan
/// for them sorts nothing (no temporary B-tree), whatever the store holds.
@Suite struct TaskPageIndexTests {
    static let indexed: [TaskQuery] = {
        var queries: [TaskQuery] = []
        for order in TaskQuery.Order.allCases {
            for status in [nil, TaskStatus.queued] {
                for core in [nil, "core-1"] {
                    queries.append(TaskQuery(status: status, coreID: core, sort: .createdAt, order: order))
                }
            }
            queries.append(TaskQuery(sort: .updatedAt, order: order))
            queries.append(TaskQuery(status: .failed, sort: .updatedAt, order: order))
            queries.append(TaskQuery(coreID: "core-1", sort: .priority, order: order))
            queries.append(TaskQuery(priority: 3, sort: .createdAt, order: order))
        }
        return queries
    }()

    @Test func documentedPagesComeFromAnIndex() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(location: .sqliteFile(path: directory.appendingPathComponent("plan.sqlite").path))
        for query in Self.indexed {
            let arguments = SQLiteStore.taskFilter(query).arguments + [query.limit, query.offset]
            let plan = try await store.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.taskPageSQL(query), arguments: arguments)
                    .map { $0["detail"] as String }
            }
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(query): \(plan)")
            #expect(!plan.contains { $0 == "SCAN tasks" }, "\(query): \(plan)")
        }
        // The check itself sees a sort: a combination no index serves.
        let unindexed = TaskQuery(status: .failed, sort: .priority)
        let plan = try await store.read { db in
            try Row.fetchAll(
                db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.taskPageSQL(unindexed),
                arguments: SQLiteStore.taskFilter(unindexed).arguments + [50, 0]
            ).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
        try await store.close()
    }
}
