import Foundation
import OrchCore
@testable import OrchStore
import Testing

/// Combined task changes on PostgreSQL (``PostgresStore/modifyCombined(_:)``), driven
/// directly: two batches of the same tasks written at once read them at the same row version,
/// and only the version check keeps the second from overwriting the first.
struct PostgresCombinedChangeTests {
    @Test func overlappingBatchesOfTheSameTasksLoseNoChange() async throws {
        try await StoreBackend.postgres.withStore { opened in
            let store = try #require(opened as? PostgresStore)
            var ids: [String] = []
            for offset in 0..<3 {
                ids.append(try await TaskStoreConformanceTests.insert(store, TaskStoreConformanceTests.dispatch(at: Double(offset))).id)
            }
            let batch = ids.map { id in
                PostgresStore.CombinedChange(id: id) { task in
                    var changed = task
                    changed.progress = (task.progress ?? 0) + 1
                    return TaskTransition(
                        task: changed, events: [EventDraft(type: .taskProgress, timestamp: task.updatedAt, data: [:])])
                }
            }
            for _ in 0..<25 {
                async let first = store.modifyCombined(batch)
                async let second = store.modifyCombined(batch)
                for result in try await first + second { _ = try result.get() }
            }
            for id in ids {
                #expect(try await store.task(id: id)?.progress == 50)
                #expect(try await store.taskEvents(taskID: id, EventQuery(limit: 100)).total == 51)
            }
        }
    }
}
