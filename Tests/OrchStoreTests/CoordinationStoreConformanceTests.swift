import Foundation
import OrchCore
import OrchModels
import Testing

@testable import OrchStore

/// Locks, webhook receipts, API tokens and callbacks: every backend behaves the same.
@Suite struct CoordinationStoreConformanceTests {
    static let backends = StoreBackend.all
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    // MARK: Locks

    @Test(arguments: backends)
    func locksGrantRenewRefuseReleaseAndHandOverWithRisingFencingTokens(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            guard case .granted(let first, let events) = try await store.acquireLock(resource: "r", owner: "a", ttl: 30, priority: 1)
            else {
                Issue.record("a free lock is granted")
                return
            }
            #expect(events.map(\.type) == [.lockAcquired])
            #expect(first.expiresAt == first.acquiredAt.addingTimeInterval(30))
            guard case .renewed(let renewed) = try await store.acquireLock(resource: "r", owner: "a", ttl: 60, priority: 1)
            else {
                Issue.record("the holder renews")
                return
            }
            #expect(renewed.lockID == first.lockID && renewed.fencingToken == first.fencingToken)
            #expect(renewed.expiresAt >= first.acquiredAt.addingTimeInterval(60) && renewed.ttl == 60)
            guard case .heldByOther(let holder) = try await store.acquireLock(resource: "r", owner: "b", ttl: 30, priority: 1)
            else {
                Issue.record("another owner is refused")
                return
            }
            #expect(holder.owner == "a" && holder.expiresAt == renewed.expiresAt)
            #expect(try await store.releaseLock(resource: "r", owner: "b", force: false) == .heldByOther(holder))
            // b waits (the queue is the store's): the release hands the lock to it.
            let wait = LockWait(waiterID: "wait-b", nodeID: "node-a", timeout: 30)
            #expect(
                try await store.acquireLock(resource: "r", owner: "b", ttl: 10, priority: 5, wait: wait)
                    == .queued(holder: holder))
            #expect(try await store.lockQueues()["r"]?.waiting == 1)
            guard case .released(_, let released, let handOff?) = try await store.releaseLock(
                resource: "r", owner: "a", force: false)
            else {
                Issue.record("the release hands over to the waiter")
                return
            }
            let successor = handOff.lock
            #expect(handOff.waiterID == "wait-b" && handOff.nodeID == "node-a")
            #expect(released.map(\.type) == [.lockReleased, .lockAcquired])
            #expect(successor.owner == "b" && successor.ttl == 10 && successor.fencingToken > first.fencingToken)
            #expect(try await store.lockHandOffs(waiterIDs: ["wait-b", "other"]) == ["wait-b": successor])
            #expect(try await store.lockQueues().isEmpty)
            #expect(try await store.withdrawLockWaiter(resource: "r", waiterID: "wait-b") == .granted(successor))
            #expect(try await store.listLocks(resource: "r", owner: nil, expiredSince: nil).map(\.owner) == ["b"])
            #expect(try await store.countHeldLocks() == 1)
            #expect(try await store.nextLockExpiry() == successor.expiresAt)
            #expect(try await store.releaseLock(resource: "none", owner: "a", force: false) == .notHeld)
            // An admin's forced release of someone else's lock says so in its event.
            guard case .released(_, let forced, nil) = try await store.releaseLock(
                resource: "r", owner: "admin", force: true)
            else {
                Issue.record("a forced release releases")
                return
            }
            #expect(forced.first?.data["forced"] == .bool(true))
            #expect(try await store.nextLockExpiry() == nil)
        }
    }

    /// A lock lapses when the store's clock passes its `expires_at` (real time: the PostgreSQL
    /// store's clock is the database server's).
    @Test(arguments: backends)
    func aLapsedLockIsExpiredByTheStoresClockAndGrantedAnew(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            // Three seconds, so that the checks of a live lock below hold on a loaded machine too.
            guard case .granted(let first, _) = try await store.acquireLock(resource: "r", owner: "a", ttl: 3, priority: 1)
            else {
                Issue.record("granted")
                return
            }
            // Not lapsed yet: refused, and not expired.
            #expect(try await store.expireLock(resource: "r", lockID: first.lockID) == .held(until: first.expiresAt))
            guard case .heldByOther = try await store.acquireLock(resource: "r", owner: "b", ttl: 30, priority: 1) else {
                Issue.record("a live lock is not taken over")
                return
            }
            try await Task.sleep(for: .milliseconds(max(0, Int64(first.expiresAt.timeIntervalSinceNow * 1000)) + 150))
            // Lapsed: its owner's release no longer counts, another owner takes it over.
            #expect(try await store.releaseLock(resource: "r", owner: "b", force: false) == .notHeld)
            guard case .granted(let second, let events) = try await store.acquireLock(resource: "r", owner: "b", ttl: 1, priority: 1)
            else {
                Issue.record("a lapsed lock is taken over")
                return
            }
            #expect(events.map(\.type) == [.lockExpired, .lockAcquired])
            #expect(second.fencingToken > first.fencingToken && second.acquiredAt >= first.expiresAt)
            let expiredToo = try await store.listLocks(resource: "r", owner: nil, expiredSince: first.acquiredAt)
            #expect(Set(expiredToo.map(\.state)) == [.held, .expired])
            // Expiring by id: a stale id expires nothing; the holder is expired once its time is up.
            #expect(try await store.expireLock(resource: "r", lockID: first.lockID) == .gone)
            try await Task.sleep(for: .milliseconds(1150))
            guard case .expired(let expired, let expiredEvents, nil) = try await store.expireLock(resource: "r", lockID: second.lockID)
            else {
                Issue.record("a lapsed holder is expired")
                return
            }
            #expect(expired.state == .expired && expiredEvents.map(\.type) == [.lockExpired])
            #expect(try await store.countHeldLocks() == 0)
            #expect(try await store.expireLock(resource: "r", lockID: second.lockID) == .gone)
        }
    }

    /// The wait queue is the store's: waiters are served by priority, then arrival, by a
    /// release and by an expiry alike; a waiter that withdrew, one whose timeout ran out and
    /// one of a node not seen lately are passed over; the queues count only live waiters.
    @Test(arguments: backends)
    func theWaitQueueServesByPriorityThenArrivalAndPassesOverTheDeadAndTheGone(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            guard case .granted(let first, _) = try await store.acquireLock(resource: "q", owner: "holder", ttl: 60, priority: 1)
            else {
                Issue.record("granted")
                return
            }
            try await store.recordNodeSeen("alive")
            func wait(_ owner: String, priority: Int, ttl: Int = 30, timeout: Int = 30) async throws {
                let outcome = try await store.acquireLock(
                    resource: "q", owner: owner, ttl: ttl, priority: priority,
                    wait: LockWait(waiterID: "w-\(owner)", nodeID: "alive", timeout: timeout))
                #expect(outcome == .queued(holder: first), "\(owner)")
            }
            try await wait("low", priority: 1)
            // Two seconds: its grant lapses below and the expiry hands the lock on.
            try await wait("high-early", priority: 9, ttl: 2)
            try await wait("high-late", priority: 9)
            try await wait("mid", priority: 5)
            #expect(try await store.lockQueues()["q"]?.waiting == 4)
            try await wait("brief", priority: 10, timeout: 1)
            let briefQueued = Date()
            try await wait("left", priority: 10)
            #expect(try await store.withdrawLockWaiter(resource: "q", waiterID: "w-left") == .withdrawn)
            #expect(try await store.withdrawLockWaiter(resource: "q", waiterID: "w-left") == .gone)
            try await Task.sleep(for: .milliseconds(max(0, Int64(briefQueued.timeIntervalSinceNow * 1000)) + 1150))
            // The release passes over the waiter whose timeout ran out.
            guard case .released(_, let released, let handOff?) = try await store.releaseLock(resource: "q", owner: "holder", force: false)
            else {
                Issue.record("the release hands the lock to the head waiter")
                return
            }
            #expect(released.map(\.type) == [.lockReleased, .lockAcquired])
            #expect(handOff.waiterID == "w-high-early" && handOff.nodeID == "alive" && handOff.lock.ttl == 2)
            #expect(try await store.withdrawLockWaiter(resource: "q", waiterID: "w-brief") == .gone)
            // Its two seconds run out: the expiry hands the lock to the next.
            try await Task.sleep(for: .milliseconds(max(0, Int64(handOff.lock.expiresAt.timeIntervalSinceNow * 1000)) + 150))
            guard case .expired(_, let events, let next?) = try await store.expireLock(resource: "q", lockID: handOff.lock.lockID)
            else {
                Issue.record("the expiry hands the lock to the head waiter")
                return
            }
            #expect(events.map(\.type) == [.lockExpired, .lockAcquired])
            var owners = [handOff.lock.owner, next.lock.owner]
            while case .released(_, _, let next?) = try await store.releaseLock(resource: "q", owner: owners.last!, force: false) {
                owners.append(next.lock.owner)
            }
            #expect(owners == ["high-early", "high-late", "mid", "low"])
            #expect(try await store.lockQueues().isEmpty)

            // A node nobody has seen for longer than a node lives: its waiter is not live.
            _ = try await store.acquireLock(resource: "n", owner: "holder", ttl: 30, priority: 1)
            _ = try await store.acquireLock(
                resource: "n", owner: "orphan", ttl: 30, priority: 1,
                wait: LockWait(waiterID: "w-orphan", nodeID: "gone-node", timeout: 60))
            #expect(try await store.lockQueues()["n"]?.waiting == 1)
            try await store.forgetNode("gone-node")
            #expect(try await store.lockQueues()["n"] == nil)
            guard case .released(_, _, nil) = try await store.releaseLock(resource: "n", owner: "holder", force: false) else {
                Issue.record("a forgotten node's waiter is not handed the lock")
                return
            }
        }
    }

    /// Failed logins are counted per key in the store (shared by every node), cleared by a
    /// success, and start again once the last one is older than `forgetAfter`.
    @Test(arguments: backends)
    func loginFailuresAreCountedClearedAndForgotten(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let keys = ["pair:alice|10.0.0.1", "user:alice"]
            for _ in 0..<3 { try await store.recordLoginFailure(keys: keys, forgetAfter: 900) }
            try await store.recordLoginFailure(keys: ["user:alice"], forgetAfter: 900)
            let (now, failures) = try await store.loginFailures(keys: keys + ["user:nobody"])
            #expect(failures.mapValues(\.failures) == ["pair:alice|10.0.0.1": 3, "user:alice": 4])
            #expect(failures.values.allSatisfy { abs($0.lastFailure - now.timeIntervalSince1970) < 5 })
            try await store.clearLoginFailures(keys: ["pair:alice|10.0.0.1"])
            #expect(try await store.loginFailures(keys: keys).failures.mapValues(\.failures) == ["user:alice": 4])
            try await Task.sleep(for: .milliseconds(1100))
            // Older than forgetAfter: the next failure counts from one, and old keys are deleted.
            try await store.recordLoginFailure(keys: ["user:bob"], forgetAfter: 1)
            #expect(try await store.loginFailures(keys: keys).failures.isEmpty)
            try await store.recordLoginFailure(keys: ["user:bob"], forgetAfter: 900)
            #expect(try await store.loginFailures(keys: ["user:bob"]).failures["user:bob"]?.failures == 2)
        }
    }

    @Test(arguments: backends)
    func concurrentAcquirersOfOneResourceGetOneGrant(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let grants = try await withThrowingTaskGroup(of: Int64?.self) { group in
                for owner in 0..<30 {
                    group.addTask {
                        let outcome = try await store.acquireLock(resource: "hot", owner: "o\(owner)", ttl: 30, priority: 1)
                        if case .granted(let lock, _) = outcome { return lock.fencingToken }
                        return nil
                    }
                }
                return try await group.reduce(into: [Int64]()) { if let token = $1 { $0.append(token) } }
            }
            #expect(grants.count == 1)
            // Distinct resources at once: each granted, every fencing token different.
            let tokens = try await withThrowingTaskGroup(of: Int64?.self) { group in
                for resource in 0..<20 {
                    group.addTask {
                        if case .granted(let lock, _) = try await store.acquireLock(
                            resource: "res-\(resource)", owner: "o", ttl: 30, priority: 1)
                        {
                            return lock.fencingToken
                        }
                        return nil
                    }
                }
                return try await group.reduce(into: [Int64]()) { if let token = $1 { $0.append(token) } }
            }
            #expect(tokens.count == 20 && Set(tokens + grants).count == 21)
        }
    }

    // MARK: Webhook receipts

    @Test(arguments: backends)
    func concurrentCopiesOfAWebhookAreRecordedOnceAndAnsweredAlike(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let transition = TaskLifecycle.dispatch(
                DispatchRequest(coreID: "hooks"), id: Identifier.make("task"), createdBy: nil, now: Self.start)
            _ = try await store.insertTask(transition, idempotency: nil, activeSince: Self.start)
            let update = StatusUpdateRequest(status: .running, progress: 40)
            let recordings = try await withThrowingTaskGroup(of: WebhookRecording.self) { group in
                for copy in 0..<8 {
                    group.addTask {
                        try await store.recordWebhook(
                            key: "t.sig", taskID: transition.task.id, coreID: nil,
                            change: { try TaskLifecycle.update($0, with: update, now: Self.start) },
                            receivedAt: Self.start, forgetBefore: Self.start.addingTimeInterval(-600),
                            event: { _ in EventDraft(type: .webhookReceived, timestamp: Self.start, data: ["copy": .int(Int64(copy))]) },
                            answer: { event, outcome in "\(event.sequence) \(outcome)" })
                    }
                }
                return try await group.reduce(into: [WebhookRecording]()) { $0.append($1) }
            }
            #expect(recordings.filter { !$0.isReplay }.count == 1)
            #expect(Set(recordings.map(\.answer)).count == 1)
            let (_, events) = try await store.taskEvents(taskID: transition.task.id, EventQuery(limit: 100))
            #expect(events.map(\.type) == [.taskCreated, .taskStarted, .taskProgress, .webhookReceived])
            #expect(try await store.webhookReceipt(key: "t.sig") == recordings[0].answer)
        }
    }

    @Test(arguments: backends)
    func aWebhookForAMissingOrFinishedTaskIsStillRecorded(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let transition = TaskLifecycle.dispatch(
                DispatchRequest(coreID: "hooks"), id: Identifier.make("task"), createdBy: nil, now: Self.start)
            _ = try await store.insertTask(transition, idempotency: nil, activeSince: Self.start)
            _ = try await store.modifyTask(id: transition.task.id) {
                try TaskLifecycle.update($0, with: StatusUpdateRequest(status: .cancelled), now: Self.start)
            }
            for (key, taskID) in [("a", "task-missing"), ("b", transition.task.id)] {
                let recording = try await store.recordWebhook(
                    key: key, taskID: taskID, coreID: "hooks",
                    change: { try TaskLifecycle.update($0, with: StatusUpdateRequest(status: .completed), now: Self.start) },
                    receivedAt: Self.start, forgetBefore: Self.start.addingTimeInterval(-600),
                    event: { _ in EventDraft(type: .webhookReceived, timestamp: Self.start, data: [:]) },
                    answer: { _, outcome in "\(outcome)" })
                #expect(!recording.isReplay && recording.events.map(\.type) == [.webhookReceived])
                #expect(recording.answer == (key == "a" ? "taskNotFound" : recording.answer))
                if key == "b" { #expect(recording.answer.hasPrefix("refused")) }
            }
            #expect(try await store.task(id: transition.task.id)?.status == .cancelled)
        }
    }

    // MARK: API tokens

    @Test(arguments: backends)
    func apiTokensAreFoundByDigestListedAndRevokedOnce(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let user = UserRecord(
                id: "user-t", username: "tokens", email: "t@example.com", role: .operator, passwordHash: "x", createdAt: Self.start)
            try await store.createUser(user)
            let token = APITokenRecord(
                id: "tok-1", userID: user.id, name: "ci", role: .viewer, digest: "d1", prefix: "orch_abc", createdAt: Self.start,
                expiresAt: nil)
            try await store.createAPIToken(token)
            #expect(try await store.apiToken(digest: "d1") == token)
            #expect(try await store.apiToken(id: "tok-1")?.name == "ci")
            #expect(try await store.listAPITokens(userID: user.id).map(\.id) == ["tok-1"])
            let revoked = try #require(try await store.revokeAPIToken(id: "tok-1", at: Self.start.addingTimeInterval(5)))
            #expect(revoked.revokedAt == Self.start.addingTimeInterval(5))
            // A second revocation keeps the first time.
            #expect(try await store.revokeAPIToken(id: "tok-1", at: Self.start.addingTimeInterval(9))?.revokedAt == revoked.revokedAt)
            #expect(try await store.listAPITokens(userID: nil).isEmpty)
            #expect(try await store.revokeAPIToken(id: "tok-none", at: Self.start) == nil)
        }
    }

    @Test(arguments: backends)
    func deactivationRevokesTheUsersAPITokensInTheSameChange(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let user = UserRecord(
                id: "user-d", username: "leaver", email: "l@example.com", role: .admin, passwordHash: "x", createdAt: Self.start)
            try await store.createUser(user)
            for (id, role) in [("tok-a", Role.admin), ("tok-v", .viewer)] {
                try await store.createAPIToken(
                    APITokenRecord(
                        id: id, userID: user.id, name: id, role: role, digest: id, prefix: id, createdAt: Self.start,
                        expiresAt: nil))
            }
            let demoted = try #require(try await store.updateUser(
                id: user.id, changes: UserChanges(role: .viewer, endsSessions: true, revokedAPITokenRoles: [.admin, .operator, .system])))
            #expect(demoted.tokenGeneration == 1)
            #expect(try await store.listAPITokens(userID: user.id).map(\.id) == ["tok-v"])
            _ = try await store.updateUser(
                id: user.id, changes: UserChanges(isActive: false, endsSessions: true, revokedAPITokenRoles: Set(Role.allCases)))
            #expect(try await store.listAPITokens(userID: user.id).isEmpty)
            #expect(try await store.user(id: user.id)?.tokenGeneration == 2)
        }
    }

    // MARK: Callbacks

    @Test(arguments: backends)
    func aFinishedTaskQueuesItsCallbackWhichIsLeasedOnceAndRecorded(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let transition = TaskLifecycle.dispatch(
                DispatchRequest(coreID: "cb", metadata: ["callback_url": "http://hooks.example.com/done"]),
                id: Identifier.make("task"), createdBy: nil, now: Self.start)
            _ = try await store.insertTask(transition, idempotency: nil, activeSince: Self.start)
            #expect(try await store.nextCallbackTime() == nil)
            _ = try await store.modifyTask(id: transition.task.id) {
                try TaskLifecycle.update($0, with: StatusUpdateRequest(status: .completed, result: ["ok": true]), now: Self.start)
            }
            #expect(try await store.nextCallbackTime() == Self.start)
            let now = Self.start.addingTimeInterval(1)
            let taken = try await withThrowingTaskGroup(of: [CallbackDelivery].self) { group in
                for _ in 0..<6 {
                    group.addTask { try await store.takeDueCallbacks(now: now, leaseUntil: now.addingTimeInterval(30), limit: 10) }
                }
                return try await group.reduce(into: [CallbackDelivery]()) { $0 += $1 }
            }
            #expect(taken.count == 1)
            let delivery = try #require(taken.first)
            #expect(delivery.url == "http://hooks.example.com/done" && delivery.attempts == 0 && !delivery.body.isEmpty)
            let event = try await store.recordCallbackAttempt(
                delivery, outcome: .retry(at: now.addingTimeInterval(60)),
                event: EventDraft(type: .webhookFailed, timestamp: now, data: ["attempt": 1]))
            #expect(event.type == .webhookFailed && event.taskID == transition.task.id)
            #expect(try await store.nextCallbackTime() == now.addingTimeInterval(60))
            #expect(try await store.takeDueCallbacks(now: now, leaseUntil: now.addingTimeInterval(30), limit: 10).isEmpty)
            let again = try await store.takeDueCallbacks(
                now: now.addingTimeInterval(61), leaseUntil: now.addingTimeInterval(90), limit: 10)
            #expect(again.map(\.attempts) == [1])
            _ = try await store.recordCallbackAttempt(
                again[0], outcome: .delivered, event: EventDraft(type: .webhookDelivered, timestamp: now, data: [:]))
            #expect(try await store.nextCallbackTime() == nil)
        }
    }
}
