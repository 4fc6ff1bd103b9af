import Foundation
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// Resource locks: grants, renewals, releases, expiry, and the priority wait queue.
///
/// Every change to one resource runs inside that resource's gate (``KeyedGates``), and the store
/// transaction inside it is the authority on who holds the lock. When a lock's time is up is
/// decided by the store's clock (``OrchStore/LockStore``), the one clock every server on the
/// database shares, so this server's own clock has no say. A release or an expiry hands
/// the lock to the first waiter (highest priority, then earliest) inside the same gate, so no
/// newcomer can slip in between, and the new holder's `acquired_at` is never before the old
/// holder's release.
final class LockManager: Sendable {
    /// A request waiting for a held lock.
    final class Waiter: Sendable {
        enum Outcome: Sendable {
            case granted(LockRecord)
            case failed(any Error)
            case timedOut
            case cancelled
            /// The server began shutting down while the request waited.
            case shuttingDown
        }

        let resource: String
        let owner: String
        let ttl: Int
        let priority: Int
        /// Arrival order, for FIFO within a priority.
        let arrival: UInt64
        /// When the request started waiting.
        let enqueuedAt = ContinuousClock.now
        private struct State {
            var continuation: CheckedContinuation<Outcome, Never>?
            var outcome: Outcome?
            var claimed = false
            /// A timeout or cancellation that came while claimed, for ``unclaim()``.
            var deferred: Outcome?
        }

        private let state = Mutex(State())

        init(resource: String, owner: String, ttl: Int, priority: Int, arrival: UInt64) {
            self.resource = resource
            self.owner = owner
            self.ttl = ttl
            self.priority = priority
            self.arrival = arrival
        }

        /// Reserves the waiter for a grant; false when it already timed out or left.
        func claim() -> Bool {
            state.withLock { state in
                guard state.outcome == nil, !state.claimed else { return false }
                state.claimed = true
                return true
            }
        }

        /// Delivers `outcome` unless one was delivered, or (for timeouts and cancellations)
        /// unless a grant is under way. Returns whether it was delivered.
        @discardableResult
        func resolve(_ outcome: Outcome) -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<Outcome, Never>?? in
                guard state.outcome == nil else { return .none }
                switch outcome {
                case .timedOut, .cancelled, .shuttingDown:
                    if state.claimed {
                        if state.deferred == nil { state.deferred = outcome }
                        return .none
                    }
                case .granted, .failed: break
                }
                state.outcome = outcome
                defer { state.continuation = nil }
                return .some(state.continuation)
            }
            guard case .some(let waiting) = continuation else { return false }
            waiting?.resume(returning: outcome)
            return true
        }

        /// Gives back a claim whose grant did not happen. Returns false when a timeout or
        /// cancellation came meanwhile: it is delivered now and the waiter is gone.
        func unclaim() -> Bool {
            let deferred = state.withLock { state -> Outcome? in
                state.claimed = false
                defer { state.deferred = nil }
                return state.deferred
            }
            guard let deferred else { return true }
            resolve(deferred)
            return false
        }

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
    /// Records how long each grant took (``OrchMetrics/recordLockWait(_:)``).
    let metrics: OrchMetrics?
    private let gates = KeyedGates()
    private let queues = Mutex<(waiters: [String: [Waiter]], arrivals: UInt64)>(([:], 0))

    init(store: any Store, bus: EventBus, metrics: OrchMetrics? = nil) {
        self.store = store
        self.bus = bus
        self.metrics = metrics
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
        let step: AcquireStep = try await gates.withGate(request.resource) {
            switch try await store.acquireLock(
                resource: request.resource, owner: request.owner, ttl: request.ttl, priority: request.priority)
            {
            case .granted(let lock, let events):
                bus.publish(events)
                return .immediate(lock)
            case .renewed(let lock):
                return .immediate(lock)
            case .heldByOther(let holder):
                guard request.timeout > 0 else {
                    throw OrchError.locked(resource: holder.resource, owner: holder.owner, expiresAt: holder.expiresAt)
                }
                return .queued(enqueue(request))
            }
        }
        let waiter: Waiter
        switch step {
        case .immediate(let lock): return lock
        case .queued(let queued): waiter = queued
        }
        abandoned?.whenFired {
            if waiter.resolve(.cancelled) { self.remove(waiter) }
        }
        shutdown?.whenFired {
            if waiter.resolve(.shuttingDown) { self.remove(waiter) }
        }
        let timer = Task {
            try await Task.sleep(for: .seconds(request.timeout))
            if waiter.resolve(.timedOut) { self.remove(waiter) }
        }
        defer { timer.cancel() }
        let outcome = await withTaskCancellationHandler {
            await waiter.wait()
        } onCancel: {
            if waiter.resolve(.cancelled) { self.remove(waiter) }
        }
        switch outcome {
        case .granted(let lock): return lock
        case .failed(let error): throw error
        case .timedOut:
            throw OrchError.timeout(
                "Resource \(request.resource) was not granted within \(request.timeout) s",
                details: ["resource": .string(request.resource), "timeout": .int(Int64(request.timeout))])
        case .shuttingDown:
            throw OrchError.serviceUnavailable(
                "The server is shutting down; \(request.resource) was not granted, try again",
                details: ["resource": .string(request.resource)], retryAfter: 1)
        case .cancelled:
            // Nobody reads this answer: the client hung up.
            throw OrchError.timeout(
                "The client left before \(request.resource) was granted", details: ["resource": .string(request.resource)])
        }
    }

    /// Releases `resource` (held by `owner`, or by anyone with `force`) and hands it to the
    /// next waiter; returns the released lock and the moment of release. Throws 404 when it is
    /// not held, 403 when someone else holds it.
    func release(resource: String, owner: String?, force: Bool) async throws -> (lock: LockRecord, releasedAt: Date) {
        try await gates.withGate(resource) {
            // The first waiter takes the lock in the release's own transaction.
            let successor = nextClaimedWaiter(resource)
            let outcome: LockReleaseOutcome
            do {
                outcome = try await store.releaseLock(
                    resource: resource, owner: owner, force: force,
                    successor: successor.map { LockSuccessor(owner: $0.owner, ttl: $0.ttl, priority: $0.priority) })
            } catch {
                if let successor { giveBack(successor) }
                throw error
            }
            if case .released = outcome {} else if let successor { giveBack(successor) }
            switch outcome {
            case .released(let lock, let events, let successorLock):
                bus.publish(events)
                if let successor, let successorLock { successor.resolve(.granted(successorLock)) }
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
    }

    /// Expires lock `lockID` of `resource` if it is still held, and hands the resource to the
    /// next waiter.
    func expire(resource: String, lockID: String) async throws {
        try await gates.withGate(resource) {
            guard case .expired(_, let events) = try await store.expireLock(resource: resource, lockID: lockID) else { return }
            bus.publish(events)
            await handOff(resource)
        }
    }

    /// How many requests wait, and the longest any of them has waited.
    func waiting() -> (count: Int, longest: Duration) {
        let now = ContinuousClock.now
        return queues.withLock { queues in
            let all = queues.waiters.values.joined()
            return (all.count, all.map { now - $0.enqueuedAt }.max() ?? .zero)
        }
    }

    /// Waiters by resource, for `GET /locks`.
    func queueStatus() -> LockList.QueueStatus {
        queues.withLock { queues in
            let counts = queues.waiters.mapValues(\.count).filter { $0.value > 0 }
            return LockList.QueueStatus(totalWaiting: counts.values.reduce(0, +), byResource: counts)
        }
    }

    // MARK: Queue

    private func enqueue(_ request: AcquireLockRequest) -> Waiter {
        queues.withLock { queues in
            queues.arrivals += 1
            let waiter = Waiter(
                resource: request.resource, owner: request.owner, ttl: request.ttl, priority: request.priority,
                arrival: queues.arrivals)
            var line = queues.waiters[request.resource, default: []]
            let index = line.firstIndex { $0.priority < waiter.priority } ?? line.endIndex
            line.insert(waiter, at: index)
            queues.waiters[request.resource] = line
            return waiter
        }
    }

    private func remove(_ waiter: Waiter) {
        queues.withLock { queues in
            queues.waiters[waiter.resource]?.removeAll { $0 === waiter }
            if queues.waiters[waiter.resource]?.isEmpty == true { queues.waiters[waiter.resource] = nil }
        }
    }

    /// Inside the resource's gate, with the lock free: grants it to the first waiter still
    /// waiting.
    private func handOff(_ resource: String) async {
        while let waiter = nextClaimedWaiter(resource) {
            do {
                switch try await store.acquireLock(
                    resource: resource, owner: waiter.owner, ttl: waiter.ttl, priority: waiter.priority)
                {
                case .granted(let lock, let events):
                    bus.publish(events)
                    waiter.resolve(.granted(lock))
                    return
                case .renewed(let lock):
                    waiter.resolve(.granted(lock))
                    return
                case .heldByOther:
                    // Cannot happen inside the gate with the lock just freed; leave the waiter to time out.
                    waiter.resolve(.failed(OrchError.conflict("Resource \(resource) was taken")))
                    return
                }
            } catch {
                waiter.resolve(.failed(error))
                return
            }
        }
    }

    /// Puts a claimed waiter whose grant did not happen back at the head of its line.
    private func giveBack(_ waiter: Waiter) {
        guard waiter.unclaim() else { return }
        queues.withLock { queues in queues.waiters[waiter.resource, default: []].insert(waiter, at: 0) }
    }

    private func nextClaimedWaiter(_ resource: String) -> Waiter? {
        queues.withLock { queues in
            while var line = queues.waiters[resource], !line.isEmpty {
                let waiter = line.removeFirst()
                queues.waiters[resource] = line.isEmpty ? nil : line
                if waiter.claim() { return waiter }
            }
            return nil
        }
    }
}

/// What the gated part of an acquisition decided.
private enum AcquireStep: Sendable {
    case immediate(LockRecord)
    case queued(LockManager.Waiter)
}
