import Foundation
import OrchCore
import OrchModels
@testable import OrchStore
import PostgresNIO
import Testing

/// The parts of the PostgreSQL dispatch statement that read the task table keep an index plan
/// whatever the statistics say. The store runs its statements on generic plans, which are chosen
/// from the statistics alone; with every task of the table in one core, PostgreSQL once read a
/// core's recent durations for a dispatch to another core by walking every finished task.
struct PostgresDispatchPlanTests {
    @Test func recentDurationsOfAnotherCoreAreReadFromTheCoreIndex() async throws {
        try await StoreBackend.postgres.withStore { opened in
            let store = try #require(opened as? PostgresStore)
            let finished = Date().addingTimeInterval(-3600)
            for _ in 0..<3 {
                let transitions = (0..<1000).map { _ in
                    var transition = TaskLifecycle.dispatch(
                        DispatchRequest(coreID: "busy"), id: Identifier.make("task"), createdBy: "test", now: finished)
                    transition.task.status = .completed
                    transition.task.completedAt = finished
                    return transition
                }
                _ = try await store.insertTasks(transitions, activeSince: finished)
            }
            try await store.rows("ANALYZE tasks")
            let plan = try await store.autocommit { connection in
                try await connection.execute(
                    PostgresQuery(unsafeSQL: "PREPARE recent_durations(text) AS SELECT \(PostgresStore.averageDuration("$1"))"))
                let lines = try await connection.rows("EXPLAIN EXECUTE recent_durations('idle')").map {
                    try $0["QUERY PLAN"].decode(String.self)
                }
                try await connection.execute("DEALLOCATE recent_durations")
                return lines
            }
            let text = plan.joined(separator: "\n")
            #expect(text.contains("Index Scan Backward using tasks_core_created"), "\(text)")
            #expect(!text.contains("Filter:"), "\(text)")
            #expect(!text.contains("Seq Scan"), "\(text)")
            // And it reads what it should: the mean over the core's latest completed tasks.
            #expect(try await store.coreLoad(coreID: "busy", since: finished).averageDuration == nil)
        }
    }
}
