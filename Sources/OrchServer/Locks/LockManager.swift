import Foundation
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// Resource locks: grants, renewals, releases, expiry, and the priority wait queue, for every
/// node of a database alike.
///
/// The store is the authority on who holds a lock and on who waits (``OrchStore/LockStore``):
/// a request that must wait is queued in the database, and a release or an expiry through any
/// node hands the lock to the head waiter (highest priority, then earliest) in its own
/// transaction, so no newcomer can slip in between and the new holder's `acquired_at` is never
/// before the old holder's release. When a lock's time is up is decided by the store's clock,
/// the one clock every node shares.
///
/// This node keeps only the answers its waiting requests are owed. A hand-off made here
/// answers its waiter at once when it waits here; a hand-off made through another node is
/// heard as its `lock.acquired` event (which reaches every node's bus), after which the store
/// says which waiter it went to. A waiter whose time runs out or whose client hangs up
/// withdraws from the store's queue; when a hand-off got there first, a timed-out waiter takes
/// the lock it was granted and a departed one releases it to the next.
final class LockManager: Sendable {
    /// A request of this node waiting for a held lock.
    final class Waiter: Sendable {
        enum Outcome: Sendable {
            case granted(LockRecord)
            case timedOut
            case cancelled
            /// The server began shutting down while the request waited.
            case shuttingDown
        }

        let id: String
        let resource: String
        let owner: String
        private struct State {
            var continuation: CheckedContinuation<Outcome, Never>?
            var outcome: Outcome?
        }

        private let state = Mutex(State())

        init(id: String, resource: String, owner: String) {
            self.id = id
            self.resource = resource
            self.owner = owner
        }

        /// Delivers `outcome` unless one was delivered; returns whether it was.
        @discardableResult
        func resolve(_ outcome: Outcome) -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<Outcome, Never>?? in
                guard state.outcome == nil else { return .none }
                state.outcome = outcome
                defer { state.continuation = nil }
                return .some(state.continuation)
            }
            guard case .some(let waiting) = continuation else { return false }
            waiting?.resume(returning: outcome)
            return true
        }

        /// Whether an outcome was delivered.
        var isResolved: Bool { state.withLock { $0.outcome != nil } }

        func wait() async -> Outcome {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Outcome? in
                    if let outcome = state.outcome { return outcome }
                    state.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    let store: any Store
    let bus: EventBus
    /// This node, named in the waiters it queues.
    let nodeID: String
    /// Records how long each grant took (``OrchMetrics/recordLockWait(_:)``).
    let metrics: OrchMetrics?
    /// This node's waiting requests, by waiter id.
    private let waiters = Mutex<[String: Waiter]>([:])

    init(store: any Store, bus: EventBus, nodeID: String, metrics: OrchMetrics? = nil) {
        self.store = store
        self.bus = bus
        self.nodeID = nodeID
        self.metrics = metrics
        _ = bus.listen { [weak self] events in self?.heard(events) }
    }

    /// The shortest pause between expiry passes that found nothing due (when this server's
    /// clock runs ahead of the store's, a due lock is not lapsed yet by the store's clock).
    static let expiryRetry: TimeInterval = 0.1

    /// Expires every held lock whose time is up (by the store's clock) and hands each to its
    /// next waiter; returns when to look again, `nil` when no lock is held.
    func expireDue() async throws -> Date? {
        let now = Date()
        guard let first = try await store.nextLockExpiry() else { return nil }
        guard first <= now else { return first }
        for lock in try await store.listLocks(resource: nil, owner: nil, expiredSince: nil) where lock.expiresAt <= now {
            try await expire(resource: lock.resource, lockID: lock.lockID)
        }
        guard let next = try await store.nextLockExpiry() else { return nil }
        return max(next, Date().addingTimeInterval(Self.expiryRetry))
    }

    /// Acquires or renews `request.resource` for `request.owner`, waiting up to
    /// `request.timeout` seconds behind the holder and any waiter of higher priority.
    ///
    /// Throws 409 `RESOURCE_LOCKED` when held and `timeout` is 0, 408 `TIMEOUT` when the wait
    /// runs out. A waiter leaves the queue at once when `abandoned` fires (its client hung up)
    /// or its task is cancelled, and with 503 `SERVICE_UNAVAILABLE` when `shutdown` fires.
    func acquire(
        _ request: AcquireLockRequest, abandoned: HangUpSignal? = nil, shutdown: HangUpSignal? = nil
    ) async throws -> LockRecord {
        let started = ContinuousClock.now
        let lock = try await acquireWaiting(request, abandoned: abandoned, shutdown: shutdown)
        metrics?.recordLockWait(ContinuousClock.now - started)
        return lock
    }

    private func acquireWaiting(
        _ request: AcquireLockRequest, abandoned: HangUpSignal?, shutdown: HangUpSignal?
    ) async throws -> LockRecord {
        let wait = request.timeout > 0 ? LockWait(waiterID: Identifier.make("wait"), nodeID: nodeID, timeout: request.timeout) : nil
        // Known before it is queued: a hand-off may be heard before the store's answer is.
        let waiter = wait.map { Waiter(id: $0.waiterID, resource: request.resource, owner: request.owner) }
        if let waiter { waiters.withLock { $0[waiter.id] = waiter } }
        defer { if let waiter { waiters.withLock { _ = $0.removeValue(forKey: waiter.id) } } }
        switch try await store.acquireLock(
            resource: request.resource, owner: request.owner, ttl: request.ttl, priority: request.priority, wait: wait)
        {
        case .granted(let lock, let events):
            bus.publish(events)
            return lock
        case .renewed(let lock):
            return lock
        case .heldByOther(let holder):
            throw OrchError.locked(resource: holder.resource, owner: holder.owner, expiresAt: holder.expiresAt)
        case .queued:
            break
        }
        guard let waiter else { throw OrchError.conflict("Resource \(request.resource) was queued without waiting") }
        abandoned?.whenFired { waiter.resolve(.cancelled) }
        shutdown?.whenFired { waiter.resolve(.shuttingDown) }
        let timer = Task {
            try await Task.sleep(for: .seconds(request.timeout))
            waiter.resolve(.timedOut)
        }
        defer { timer.cancel() }
        let outcome = await withTaskCancellationHandler {
            await waiter.wait()
        } onCancel: {
            waiter.resolve(.cancelled)
        }
        if case .granted(let lock) = outcome { return lock }
        // Leaving: the store says whether a hand-off got there first.
        let granted: LockRecord?
        switch try await store.withdrawLockWaiter(resource: request.resource, waiterID: waiter.id) {
        case .withdrawn, .gone: granted = nil
        case .granted(let lock): granted = lock
        }
        switch outcome {
        case .granted(let lock): return lock
        case .timedOut:
            if let granted { return granted }
            throw OrchError.timeout(
                "Resource \(request.resource) was not granted within \(request.timeout) s",
                details: ["resource": .string(request.resource), "timeout": .int(Int64(request.timeout))])
        case .shuttingDown:
            if granted != nil { _ = try? await release(resource: request.resource, owner: request.owner, force: false) }
            throw OrchError.serviceUnavailable(
                "The server is shutting down; \(request.resource) was not granted, try again",
                details: ["resource": .string(request.resource)], retryAfter: 1)
        case .cancelled:
            // Nobody reads this answer: the client hung up. A lock granted meanwhile goes on.
            if granted != nil { _ = try? await release(resource: request.resource, owner: request.owner, force: false) }
            throw OrchError.timeout(
                "The client left before \(request.resource) was granted", details: ["resource": .string(request.resource)])
        }
    }

    /// Releases `resource` (held by `owner`, or by anyone with `force`) and hands it to the
    /// next waiter; returns the released lock and the moment of release. Throws 404 when it is
    /// not held, 403 when someone else holds it.
    func release(resource: String, owner: String?, force: Bool) async throws -> (lock: LockRecord, releasedAt: Date) {
        switch try await store.releaseLock(resource: resource, owner: owner, force: force) {
        case .released(let lock, let events, let handOff):
            deliver(handOff)
            bus.publish(events)
            // The release's time is its event's (the store's clock).
            return (lock, events.first?.timestamp ?? Date())
        case .notHeld:
            throw OrchError.notFound("Resource \(resource) is not locked", details: ["resource": .string(resource)])
        case .heldByOther(let holder):
            throw OrchError.forbidden(
                "Resource \(resource) is held by another owner",
                details: ["resource": .string(resource), "owner": .string(holder.owner)])
        }
    }

    /// Expires lock `lockID` of `resource` if it is still held, and hands the resource to the
    /// next waiter.
    func expire(resource: String, lockID: String) async throws {
        guard case .expired(_, let events, let handOff) = try await store.expireLock(resource: resource, lockID: lockID)
        else { return }
        deliver(handOff)
        bus.publish(events)
    }

    /// How many requests wait on every node, and the longest any of them has waited.
    func waiting() async throws -> (count: Int, longest: TimeInterval) {
        let queues = try await store.lockQueues()
        let oldest = queues.values.map(\.oldest).min()
        return (queues.values.reduce(0) { $0 + $1.waiting }, oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
    }

    /// Waiters of every node by resource, for `GET /locks`.
    func queueStatus() async throws -> LockList.QueueStatus {
        let counts = try await store.lockQueues().mapValues(\.waiting)
        return LockList.QueueStatus(totalWaiting: counts.values.reduce(0, +), byResource: counts)
    }

    // MARK: Hand-offs

    /// Answers the waiter a hand-off went to, when it waits on this node.
    private func deliver(_ handOff: LockHandOff?) {
        guard let handOff, handOff.nodeID == nodeID else { return }
        waiters.withLock { $0[handOff.waiterID] }?.resolve(.granted(handOff.lock))
    }

    /// Looks up the hand-offs behind `lock.acquired` events of resources and owners that
    /// waiters of this node wait for (hand-offs made through other nodes, or not answered yet).
    private func heard(_ events: [EventRecord]) {
        let granted = Set(
            events.lazy.filter { $0.type == .lockAcquired }.compactMap { event -> String? in
                guard case .string(let resource) = event.data["resource"], case .string(let owner) = event.data["owner"]
                else { return nil }
                return "\(resource)\u{0}\(owner)"
            })
        guard !granted.isEmpty else { return }
        let candidates = waiters.withLock { waiters in
            waiters.values.filter { !$0.isResolved && granted.contains("\($0.resource)\u{0}\($0.owner)") }
        }
        guard !candidates.isEmpty else { return }
        Task {
            guard let found = try? await store.lockHandOffs(waiterIDs: candidates.map(\.id)) else { return }
            for waiter in candidates {
                if let lock = found[waiter.id] { waiter.resolve(.granted(lock)) }
            }
        }
    }
}
