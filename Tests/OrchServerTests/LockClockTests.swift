import Foundation
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// Lock expiry is decided by the store's clock alone (the database's on PostgreSQL), so every
/// server on one database agrees when a lock's time is up, whatever its own clock says.
@Suite struct LockClockTests {
    final class Skew: @unchecked Sendable {
        private let lock = NSLock()
        private var seconds: TimeInterval = 0
        var value: TimeInterval {
            get { lock.withLock { seconds } }
            set { lock.withLock { seconds = newValue } }
        }
    }

    /// The SQLite store's clock jumping an hour ends a lock that runs past it, and jumping back
    /// keeps a lock whose time has not come by that clock: the clock that decides is the store's.
    @Test func theStoresClockDecidesWhenALockLapses() async throws {
        let skew = Skew()
        let store = try SQLiteStore(location: .sqliteMemory, clock: { Date().addingTimeInterval(skew.value) })
        let manager = LockManager(store: store, bus: EventBus(store: store, lastSequence: 0), nodeID: "clock-test")
        let held = try await manager.acquire(AcquireLockRequest(resource: "long", owner: "a", ttl: 60))
        #expect(try await manager.expireDue() == held.expiresAt)
        skew.value = -3600
        await #expect(throws: OrchError.self) {
            _ = try await manager.acquire(AcquireLockRequest(resource: "long", owner: "b", ttl: 5))
        }
        skew.value = 3600
        let taken = try await manager.acquire(AcquireLockRequest(resource: "long", owner: "b", ttl: 5))
        #expect(taken.owner == "b" && taken.fencingToken > held.fencingToken)
    }

    /// A server started on a database with held locks expires them when their time is up and
    /// hands each to its waiter (no state of the earlier server is needed).
    @Test(arguments: TestBackend.all) func aNewManagerExpiresLocksStoredByAnEarlierOne(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let store = try await database.open()
            let first = LockManager(store: store, bus: EventBus(store: store, lastSequence: 0), nodeID: "clock-test")
            _ = try await first.acquire(AcquireLockRequest(resource: "kept", owner: "a", ttl: 60))
            _ = try await first.acquire(AcquireLockRequest(resource: "brief", owner: "a", ttl: 1))

            let second = LockManager(store: store, bus: EventBus(store: store, lastSequence: try await store.lastEventSequence()), nodeID: "clock-test-2")
            await #expect(throws: OrchError.self) {
                _ = try await second.acquire(AcquireLockRequest(resource: "kept", owner: "b", ttl: 5))
            }
            async let waiter = second.acquire(AcquireLockRequest(resource: "brief", owner: "b", ttl: 30, timeout: 10))
            try await Task.sleep(for: .milliseconds(1200))
            let next = try await second.expireDue()
            #expect(next != nil)
            let granted = try await waiter
            #expect(granted.owner == "b")
            let held = try await store.listLocks(resource: nil, owner: nil, expiredSince: nil)
            #expect(held.map(\.resource) == ["brief", "kept"] && held.map(\.owner) == ["b", "a"])
            try await store.close()
        }
    }
}
