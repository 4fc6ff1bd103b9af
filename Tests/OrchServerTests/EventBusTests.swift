import Foundation
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Synchronization
import Testing

@testable import OrchServer

/// The bus releases every stored event in sequence order, also when a transaction holding a
/// lower sequence commits long after higher ones were published.
@Suite struct EventBusTests {
    /// A PostgreSQL transaction takes sequence 1 and commits 800 ms later; events 2 to 6 are
    /// published meanwhile. The gap is not skipped: the slow event arrives first, then the rest.
    @Test func aSlowTransactionsEventIsNotSkipped() async throws {
        try await TestBackend.postgres.withDatabase { database in
            guard case .postgres(let url) = database.url else { return }
            let store = try await database.open()
            let bus = EventBus(store: store, lastSequence: 0, gapTimeout: .milliseconds(50))
            let released = Mutex<[Int64]>([])
            bus.listen { events in released.withLock { $0 += events.map(\.sequence) } }
            async let slow: Void = TestPostgres.shared.execute(
                [
                    "BEGIN",
                    "INSERT INTO events (type, timestamp, data) VALUES ('system.alert', now(), '{\"slow\":true}')",
                    "COMMIT",
                ], in: url.database, pausingBeforeLast: .milliseconds(800))
            try await Task.sleep(for: .milliseconds(200))
            let drafts = (0..<5).map { EventDraft(type: .systemAlert, timestamp: Date(), data: ["n": .int(Int64($0))]) }
            let stored = try await store.appendEvents(drafts, taskID: nil, coreID: nil)
            #expect(stored.map(\.sequence) == [2, 3, 4, 5, 6])
            bus.publish(stored)
            // Held back while the slow transaction runs.
            try await Task.sleep(for: .milliseconds(300))
            #expect(released.withLock { $0 }.isEmpty)
            try await slow
            for _ in 0..<100 where released.withLock({ $0.count }) < 6 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(released.withLock { $0 } == [1, 2, 3, 4, 5, 6])
            try await store.close()
        }
    }

    /// A sequence whose transaction rolled back never exists: the bus moves past it.
    @Test func aRolledBackSequenceIsSkipped() async throws {
        try await TestBackend.postgres.withDatabase { database in
            guard case .postgres(let url) = database.url else { return }
            let store = try await database.open()
            let bus = EventBus(store: store, lastSequence: 0, gapTimeout: .milliseconds(50))
            let released = Mutex<[Int64]>([])
            bus.listen { events in released.withLock { $0 += events.map(\.sequence) } }
            try await TestPostgres.shared.execute(
                ["BEGIN", "INSERT INTO events (type, timestamp, data) VALUES ('system.alert', now(), '{}')", "ROLLBACK"],
                in: url.database, pausingBeforeLast: .zero)
            let stored = try await store.appendEvents(
                [EventDraft(type: .systemAlert, timestamp: Date(), data: [:])], taskID: nil, coreID: nil)
            bus.publish(stored)
            for _ in 0..<100 where released.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(released.withLock { $0 } == [2])
            try await store.close()
        }
    }
}
