import Foundation
import OrchCore

/// What an acquisition found.
public enum LockAcquisition: Sendable, Hashable {
    /// A new grant; the events include `lock.expired` of a lapsed previous holder.
    case granted(LockRecord, [EventRecord])
    /// The same owner already held it: its expiry moved to now + ttl.
    case renewed(LockRecord)
    /// Someone else holds it (and the request does not wait).
    case heldByOther(LockRecord)
    /// Someone else holds it: the request waits in the resource's queue (``LockWait``).
    case queued(holder: LockRecord)
}

/// A request that waits in the resource's queue when the lock is held: kept in the database,
/// so that a release or an expiry through any node hands the lock to it.
public struct LockWait: Sendable, Hashable {
    public var waiterID: String
    /// The node the request waits on.
    public var nodeID: String
    /// Seconds it waits at most; after that a hand-off passes it over.
    public var timeout: Int

    public init(waiterID: String, nodeID: String, timeout: Int) {
        self.waiterID = waiterID
        self.nodeID = nodeID
        self.timeout = timeout
    }
}

/// A lock handed to the head waiter of its resource by a release or an expiry, in the same
/// transaction.
public struct LockHandOff: Sendable, Hashable {
    public var waiterID: String
    /// The node the waiter waits on, which answers its request.
    public var nodeID: String
    public var lock: LockRecord

    public init(waiterID: String, nodeID: String, lock: LockRecord) {
        self.waiterID = waiterID
        self.nodeID = nodeID
        self.lock = lock
    }
}

/// What a release found.
public enum LockReleaseOutcome: Sendable, Hashable {
    /// Released; when somebody waited, the lock was handed to the head waiter in the same
    /// transaction (the events hold `lock.released` and then its `lock.acquired`).
    case released(LockRecord, [EventRecord], handedTo: LockHandOff?)
    case notHeld
    case heldByOther(LockRecord)
}

/// What ``LockStore/expireLock(resource:lockID:)`` found.
public enum LockExpiry: Sendable, Hashable {
    /// Its time was up: now expired, with its `lock.expired` event, and handed to the head
    /// waiter if there was one (with its `lock.acquired`).
    case expired(LockRecord, [EventRecord], handedTo: LockHandOff?)
    /// Still held, by the store's clock, until this time (it was renewed, or the caller's clock runs ahead).
    case held(until: Date)
    /// That lock is no longer held (released, or expired already).
    case gone
}

/// What ``LockStore/withdrawLockWaiter(resource:waiterID:)`` found.
public enum LockWithdrawal: Sendable, Hashable {
    /// It was waiting and has left the queue.
    case withdrawn
    /// A hand-off granted it the lock first.
    case granted(LockRecord)
    /// Neither waiting nor granted (passed over as stale, or granted and released since).
    case gone
}

/// The waiters of one resource.
public struct LockQueue: Sendable, Hashable {
    public var waiting: Int
    /// When the longest-waiting of them began waiting (the store's clock).
    public var oldest: Date

    public init(waiting: Int, oldest: Date) {
        self.waiting = waiting
        self.oldest = oldest
    }
}

/// Lock persistence. Every method is one transaction; grants take the next fencing token from a
/// counter that never goes back, so tokens increase across restarts.
///
/// Time is the store's own: whether a lock's time is up, and the times written into records and
/// events, come from one clock that every server on the database shares (the database's clock
/// on PostgreSQL; the process's clock for the embedded SQLite file, which one process owns).
/// A lock is lapsed once that clock reaches its `expires_at`.
///
/// The wait queue is in the store too, so that one queue serves the waiters of every node: a
/// waiter is served by priority (highest first), then arrival. A hand-off passes over (and
/// forgets) waiters whose timeout has run out and waiters of nodes that have not been seen for
/// ``nodeLifetime`` (``recordNodeSeen(_:)``): a node that died cannot be handed a lock.
public protocol LockStore: Sendable {
    /// Grants `resource` to `owner` when it is free or its holder's time is up (the holder is
    /// then marked expired), renews it when `owner` holds it, and otherwise reports the holder,
    /// after queueing the request when `wait` is given.
    func acquireLock(resource: String, owner: String, ttl: Int, priority: Int, wait: LockWait?) async throws
        -> LockAcquisition

    /// Releases `resource` held by `owner` (anyone's with `force`) and hands it to the head
    /// waiter in the same transaction (one commit per hand-off). A lapsed lock of another
    /// owner counts as not held.
    func releaseLock(resource: String, owner: String?, force: Bool) async throws -> LockReleaseOutcome

    /// Marks the held lock `lockID` of `resource` expired when its time is up, and hands the
    /// resource to the head waiter.
    func expireLock(resource: String, lockID: String) async throws -> LockExpiry

    /// Takes waiter `waiterID` out of the queue of `resource` (its time ran out, its client left).
    func withdrawLockWaiter(resource: String, waiterID: String) async throws -> LockWithdrawal

    /// The locks handed to these waiters (held or expired since), by waiter id.
    func lockHandOffs(waiterIDs: [String]) async throws -> [String: LockRecord]

    /// The live waiters of every resource that has some.
    func lockQueues() async throws -> [String: LockQueue]

    /// Notes that node `nodeID` is alive now; its waiters count as live for ``nodeLifetime``.
    func recordNodeSeen(_ nodeID: String) async throws

    /// Forgets node `nodeID` and its waiters (it starts afresh, or stops).
    func forgetNode(_ nodeID: String) async throws

    /// The earliest `expires_at` of a held lock, `nil` when none is held.
    func nextLockExpiry() async throws -> Date?

    /// Held locks, and with `expiredSince` also locks that expired after it; by resource.
    func listLocks(resource: String?, owner: String?, expiredSince: Date?) async throws -> [LockRecord]

    /// How many locks are held.
    func countHeldLocks() async throws -> Int
}

/// How long a node's waiters stay live after it was last seen (nodes note themselves every
/// ``nodeHeartbeat``).
public let nodeLifetime: TimeInterval = 15
/// How often a node notes that it is alive.
public let nodeHeartbeat: Duration = .seconds(2)

/// Failed logins per key, kept in the database so that every node counts the same failures
/// (``OrchCore/LoginThrottle`` decides what they mean). Times are the store's clock.
public protocol LoginFailureStore: Sendable {
    /// The store's time now and the failures recorded under each of `keys` that has any (their
    /// `lastFailure` in seconds since 1970 by the store's clock).
    func loginFailures(keys: [String]) async throws -> (now: Date, failures: [String: LoginThrottle.Record])

    /// Counts one failure under each key; a count whose last failure is `forgetAfter` seconds
    /// old starts again from zero. Counts older than that are deleted.
    func recordLoginFailure(keys: [String], forgetAfter: TimeInterval) async throws

    /// Forgets the failures of `keys` (after a successful login).
    func clearLoginFailures(keys: [String]) async throws
}

extension LockStore {
    /// ``acquireLock(resource:owner:ttl:priority:wait:)`` for a request that does not wait.
    public func acquireLock(resource: String, owner: String, ttl: Int, priority: Int) async throws -> LockAcquisition {
        try await acquireLock(resource: resource, owner: owner, ttl: ttl, priority: priority, wait: nil)
    }
}
