import Foundation
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// Resource locks: grants, renewals, releases, expiry, and the priority wait queue.
///
/// Every change to one resource runs inside that resource's gate (``KeyedGates``), and the store
/// transaction inside it is the authority on who holds the lock. A release or an expiry hands
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
        }

        let resource: String
        let owner: String
        let ttl: Int
        let priority: Int
        /// Arrival order, for FIFO within a priority.
        let arrival: UInt64
        private let state = Mutex<(continuation: CheckedContinuation<Outcome, Never>?, outcome: Outcome?, claimed: Bool)>(
            (nil, nil, false))

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
                case .timedOut, .cancelled: if state.claimed { return .none }
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
    private let gates = KeyedGates()
    private let queues = Mutex<(waiters: [String: [Waiter]], arrivals: UInt64)>(([:], 0))

    init(store: any Store, bus: EventBus) {
        self.store = store
        self.bus = bus
    }

    /// Acquires or renews `request.resource` for `request.owner`, waiting up to
    /// `request.timeout` seconds behind the holder and any waiter of higher priority.
    ///
    /// Throws 409 `RESOURCE_LOCKED` when held and `timeout` is 0, 408 `TIMEOUT` when the wait
    /// runs out. A waiter leaves the queue at once when `abandoned` fires (its client hung up)
    /// or its task is cancelled.
    func acquire(_ request: AcquireLockRequest, abandoned: HangUpSignal? = nil) async throws -> LockRecord {
        let step: AcquireStep = try await gates.withGate(request.resource) {
            switch try await store.acquireLock(
                resource: request.resource, owner: request.owner, ttl: request.ttl, priority: request.priority, now: Date())
            {
            case .granted(let lock, let events):
                bus.publish(events)
                return .immediate(lock)
            case .renewed(let lock):
                return .immediate(lock)
            case .heldByOther(let holder):
                guard request.timeout > 0 else {
                    throw OrchError(
                        code: .resourceLocked, status: 409, message: "Resource \(request.resource) is locked",
                        details: [
                            "resource": .string(holder.resource), "owner": .string(holder.owner),
                            "expires_at": .string(Timestamp.format(holder.expiresAt)),
                        ])
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
            throw OrchError(
                code: .timeout, status: 408,
                message: "Resource \(request.resource) was not granted within \(request.timeout) s",
                details: ["resource": .string(request.resource), "timeout": .int(Int64(request.timeout))])
        case .cancelled:
            // Nobody reads this answer: the client hung up.
            throw OrchError(
                code: .timeout, status: 408, message: "The client left before \(request.resource) was granted",
                details: ["resource": .string(request.resource)])
        }
    }

    /// Releases `resource` (held by `owner`, or by anyone with `force`) and hands it to the
    /// next waiter; returns the released lock and the moment of release. Throws 404 when it is
    /// not held, 403 when someone else holds it.
    func release(resource: String, owner: String?, force: Bool) async throws -> (lock: LockRecord, releasedAt: Date) {
        try await gates.withGate(resource) {
            let now = Date()
            switch try await store.releaseLock(resource: resource, owner: owner, force: force, now: now) {
            case .released(let lock, let events):
                bus.publish(events)
                await handOff(resource)
                return (lock, now)
            case .notHeld:
                throw OrchError.notFound("Resource \(resource) is not locked", details: ["resource": .string(resource)])
            case .heldByOther(let holder):
                throw OrchError(
                    code: .insufficientPermissions, status: 403,
                    message: "Resource \(resource) is held by another owner",
                    details: ["resource": .string(resource), "owner": .string(holder.owner)])
            }
        }
    }

    /// Expires `resource`'s lock if it lapsed, and hands it to the next waiter.
    func expire(resource: String) async throws {
        try await gates.withGate(resource) {
            guard let (_, events) = try await store.expireLock(resource: resource, now: Date()) else { return }
            bus.publish(events)
            await handOff(resource)
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
                    resource: resource, owner: waiter.owner, ttl: waiter.ttl, priority: waiter.priority, now: Date())
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
