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
    case released(LockRecord, [EventRecord])
    case notHeld
    case heldByOther(LockRecord)
}

/// Lock persistence. Every method is one transaction; grants take the next fencing token from a
/// counter stored in the same transaction, so tokens increase across restarts.
public protocol LockStore: Sendable {
    /// Grants `resource` to `owner` when it is free or its holder's lease lapsed by `now`,
    /// renews it when `owner` holds it, and otherwise reports the holder.
    func acquireLock(resource: String, owner: String, ttl: Int, priority: Int, now: Date) async throws -> LockAcquisition

    /// Releases `resource` held by `owner` (anyone's with `force`).
    func releaseLock(resource: String, owner: String?, force: Bool, now: Date) async throws -> LockReleaseOutcome

    /// Marks the lock of `resource` expired if it lapsed by `now`; returns it with its
    /// `lock.expired` event, or `nil` when it is not held or has not lapsed.
    func expireLock(resource: String, now: Date) async throws -> (LockRecord, [EventRecord])?

    /// Resources whose held lock lapsed by `now`.
    func lapsedLockResources(now: Date) async throws -> [String]

    /// Held locks, and with `expiredSince` also locks that expired after it; by resource.
    func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord]

    /// The earliest expiry among held locks.
    func nextLockExpiry() async throws -> Date?

    /// How many locks are held.
    func countHeldLocks() async throws -> Int
}
