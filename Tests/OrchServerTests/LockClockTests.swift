import Foundation
import OrchCore
import OrchModels
import OrchStore
import Testing

@testable import OrchServer

/// Lock expiry is decided on the monotonic clock: the wall clock jumping (NTP, an operator)
/// neither ends a lock early nor keeps it late.
@Suite struct LockClockTests {
    final class Skew: @unchecked Sendable {
        private let lock = NSLock()
        private var seconds: TimeInterval = 0
        var value: TimeInterval {
            get { lock.withLock { seconds } }
            set { lock.withLock { seconds = newValue } }
        }
    }

    @Test func wallClockJumpsDoNotMoveExpiry() async throws {
        let store = try SQLiteStore(location: .sqliteMemory)
        let skew = Skew()
        let manager = LockManager(
            store: store, bus: EventBus(store: store, lastSequence: 0), wallClock: { Date().addingTimeInterval(skew.value) })

        _ = try await manager.acquire(AcquireLockRequest(resource: "long", owner: "a", ttl: 60))
        skew.value = 3600  // the wall clock jumps an hour ahead
        await #expect(throws: OrchError.self) {
            _ = try await manager.acquire(AcquireLockRequest(resource: "long", owner: "b", ttl: 5))
        }
        _ = try await manager.expireDue()
        #expect(try await store.listLocks(resource: "long", owner: nil, expiredSince: nil).map(\.owner) == ["a"])

        skew.value = -3600  // and an hour back
        _ = try await manager.acquire(AcquireLockRequest(resource: "short", owner: "a", ttl: 1))
        try await Task.sleep(for: .milliseconds(1100))
        _ = try await manager.expireDue()
        #expect(try await store.listLocks(resource: "short", owner: nil, expiredSince: nil).isEmpty)
    }

    @Test func restartRebuildsDeadlinesFromStoredExpiry() async throws {
        let store = try SQLiteStore(location: .sqliteMemory)
        let first = LockManager(store: store, bus: EventBus(store: store, lastSequence: 0))
        _ = try await first.acquire(AcquireLockRequest(resource: "kept", owner: "a", ttl: 60))
        _ = try await first.acquire(AcquireLockRequest(resource: "brief", owner: "a", ttl: 1))

        let second = LockManager(store: store, bus: EventBus(store: store, lastSequence: try await store.lastEventSequence()))
        try await second.restore()
        await #expect(throws: OrchError.self) {
            _ = try await second.acquire(AcquireLockRequest(resource: "kept", owner: "b", ttl: 5))
        }
        try await Task.sleep(for: .milliseconds(1100))
        let next = try await second.expireDue()
        #expect(next != nil)
        #expect(try await store.listLocks(resource: nil, owner: nil, expiredSince: nil).map(\.resource) == ["kept"])
    }
}
