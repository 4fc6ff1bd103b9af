import Foundation
import OrchCore
import OrchModels
import Testing

@Suite struct LockLifecycleTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func grantRenewReleaseAndExpireMakeTheirEvents() {
        let (lock, acquired) = LockLifecycle.grant(
            resource: "db", owner: "a", ttl: 30, priority: 2, fencingToken: 7, lockID: "lock-1", now: Self.now)
        #expect(lock.state == .held && lock.expiresAt == Self.now.addingTimeInterval(30))
        #expect(acquired.type == .lockAcquired)
        #expect(acquired.data["fencing_token"] == 7 && acquired.data["ttl"] == 30 && acquired.data["priority"] == 2)

        let renewed = LockLifecycle.renew(lock, ttl: 60, now: Self.now.addingTimeInterval(10))
        #expect(renewed.expiresAt == Self.now.addingTimeInterval(70) && renewed.fencingToken == 7 && renewed.lockID == "lock-1")

        let released = LockLifecycle.release(lock, by: "a", force: false, now: Self.now)
        #expect(released.type == .lockReleased && released.data["forced"] == false)
        #expect(LockLifecycle.release(lock, by: "admin", force: true, now: Self.now).data["forced"] == true)

        let (expired, event) = LockLifecycle.expire(lock, now: Self.now.addingTimeInterval(31))
        #expect(expired.state == .expired && event.type == .lockExpired && event.data["lock_id"] == "lock-1")
    }
}
