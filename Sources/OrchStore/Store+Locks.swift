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

/// What ``LockStore/expireLock(resource:lockID:)`` found.
public enum LockExpiry: Sendable, Hashable {
    /// Its time was up: now expired, with its `lock.expired` event.
    case expired(LockRecord, [EventRecord])
    /// Still held, by the store's clock, until this time (it was renewed, or the caller's clock runs ahead).
    case held(until: Date)
    /// That lock is no longer held (released, or expired already).
    case gone
}

/// Lock persistence. Every method is one transaction; grants take the next fencing token from a
/// counter that never goes back, so tokens increase across restarts.
///
/// Time is the store's own: whether a lock's time is up, and the times written into records and
/// events, come from one clock that every server on the database shares (the database's clock
/// on PostgreSQL; the process's clock for the embedded SQLite file, which one process owns).
/// A lock is lapsed once that clock reaches its `expires_at`.
public protocol LockStore: Sendable {
    /// Grants `resource` to `owner` when it is free or its holder's time is up (the holder is
    /// then marked expired), renews it when `owner` holds it, and otherwise reports the holder.
    func acquireLock(resource: String, owner: String, ttl: Int, priority: Int) async throws -> LockAcquisition

    /// Releases `resource` held by `owner` (anyone's with `force`) and, when `successor` is
    /// given, grants it to the successor in the same transaction (one commit per hand-off). A
    /// lapsed lock of another owner counts as not held.
    func releaseLock(resource: String, owner: String?, force: Bool, successor: LockSuccessor?) async throws
        -> LockReleaseOutcome

    /// Marks the held lock `lockID` of `resource` expired when its time is up.
    func expireLock(resource: String, lockID: String) async throws -> LockExpiry

    /// The earliest `expires_at` of a held lock, `nil` when none is held.
    func nextLockExpiry() async throws -> Date?

    /// Held locks, and with `expiredSince` also locks that expired after it; by resource.
    func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord]

    /// How many locks are held.
    func countHeldLocks() async throws -> Int
}
