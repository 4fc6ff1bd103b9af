import Foundation
import OrchCore

/// What an acquisition found.
public enum LockAcquisition: Sendable, Hashable {
    /// A new grant; the events include `lock.expired` of a lapsed previous holder.
    case granted(LockRecord, [EventRecord])
    /// The same owner already held it: its expiry moved to now + ttl.
    case renewed(LockRecord)
    /// Someone else holds it.
    case heldByOther(LockRecord)
}

/// What a release found.
public enum LockReleaseOutcome: Sendable, Hashable {
    /// Released; with a successor, the lock granted to it in the same transaction (the events
    /// hold `lock.released` and then the successor's `lock.acquired`).
    case released(LockRecord, [EventRecord], successorLock: LockRecord?)
    case notHeld
    case heldByOther(LockRecord)
}

/// Who takes a lock over at its release: the first waiter.
public struct LockSuccessor: Sendable, Hashable {
    public var owner: String
    public var ttl: Int
    public var priority: Int

    public init(owner: String, ttl: Int, priority: Int) {
        self.owner = owner
        self.ttl = ttl
        self.priority = priority
    }
}

/// Whether a held lock's time is up. The lock manager decides on the server's monotonic clock;
/// the store only asks.
public typealias LockLapsed = @Sendable (LockRecord) -> Bool

/// Lock persistence. Every method is one transaction; grants take the next fencing token from a
/// counter stored in the same transaction, so tokens increase across restarts. `now` is the
/// wall-clock time written into records and events.
public protocol LockStore: Sendable {
    /// Grants `resource` to `owner` when it is free or its holder `isLapsed` (the holder is then
    /// marked expired), renews it when `owner` holds it, and otherwise reports the holder.
    func acquireLock(
        resource: String, owner: String, ttl: Int, priority: Int, now: Date, isLapsed: @escaping LockLapsed
    ) async throws -> LockAcquisition

    /// Releases `resource` held by `owner` (anyone's with `force`) and, when `successor` is
    /// given, grants it to the successor in the same transaction (one commit per hand-off). A
    /// lapsed lock of another owner counts as not held.
    func releaseLock(
        resource: String, owner: String?, force: Bool, now: Date, isLapsed: @escaping LockLapsed,
        successor: LockSuccessor?
    ) async throws -> LockReleaseOutcome

    /// Marks the held lock `lockID` of `resource` expired; returns it with its `lock.expired`
    /// event, or `nil` when that lock is no longer held.
    func expireLock(resource: String, lockID: String, now: Date) async throws -> (LockRecord, [EventRecord])?

    /// Held locks, and with `expiredSince` also locks that expired after it; by resource.
    func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord]

    /// How many locks are held.
    func countHeldLocks() async throws -> Int
}
