import DequeModule
import Foundation
import NIOCore
import OrchCore
import OrchStore
import Synchronization

/// The in-process fan-out of stored events, in sequence order.
///
/// Every writer publishes the events it stored, after their transaction committed. Writers
/// committing together may publish in any order, so the bus holds an event back until every
/// lower sequence has been published, and releases events strictly in sequence. A sequence that
/// is not published within ``gapTimeout`` is looked up in the store once every transaction that
/// could still hold it has ended (``OrchStore/EventStore/eventFence()``), and skipped if it does
/// not exist: one lost publish can never stall the streams, and a slow transaction's events are
/// never skipped.
///
/// Released events go to listeners (cheap, synchronous hooks such as claim wake-ups) and to
/// subscriptions (live streams, each with a bounded buffer). The most recent events are kept in
/// memory so that most resumes replay without touching the store.
public final class EventBus: Sendable {
    public typealias Listener = @Sendable ([EventRecord]) -> Void

    private struct State {
        var nextSequence: Int64
        var pending: [Int64: EventRecord] = [:]
        var recent: Deque<EventRecord> = []
        var listeners: [UUID: Listener] = [:]
        var subscriptions: [UUID: EventSubscription] = [:]
        var gapCheckScheduled = false
    }

    private let state: Mutex<State>
    private let store: any EventStore
    /// What the streams' buffers hold together, and the most they may.
    let memory: StreamMemory
    /// Events kept in memory for replays.
    let recentCapacity: Int
    /// How long a missing sequence may hold back later ones before the store is asked.
    let gapTimeout: Duration
    /// The highest sequence this node published, for the other nodes (``ClusterSync``): only
    /// the newest is kept, so a slow announcer skips to the latest.
    let announcements: AsyncStream<Int64>
    private let announce: AsyncStream<Int64>.Continuation
    /// Whether there are other nodes to announce to (the store has a ``OrchStore/ClusterChannel``).
    private let announces: Bool

    /// - Parameters:
    ///   - lastSequence: the highest sequence already stored; the bus releases from the next one.
    ///   - recentCapacity: events kept for in-memory replay; default 4096.
    ///   - announces: whether published events are announced to other nodes (``announcements``).
    init(
        store: any EventStore, lastSequence: Int64, recentCapacity: Int = 4096, gapTimeout: Duration = .milliseconds(200),
        memory: StreamMemory = StreamMemory(), announces: Bool = false
    ) {
        self.store = store
        self.memory = memory
        self.state = Mutex(State(nextSequence: lastSequence + 1))
        self.recentCapacity = recentCapacity
        self.gapTimeout = gapTimeout
        self.announces = announces
        (announcements, announce) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Publishing

    /// Hands committed events to the bus, and announces them to the database's other nodes.
    public func publish(_ events: [EventRecord]) {
        guard !events.isEmpty else { return }
        if announces, let highest = events.lazy.map(\.sequence).max() { announce.yield(highest) }
        accept(events)
    }

    /// Reads the events other nodes committed up to `sequence` from the store and releases them
    /// in order with this node's own (a sequence still missing then is a gap, resolved as any).
    func catchUp(through sequence: Int64) async throws {
        var after = state.withLock { $0.nextSequence - 1 }
        while after < sequence {
            let found = try await store.events(after: after, through: sequence, matching: EventFilter(), limit: 1000)
            guard let last = found.last else { return }
            accept(found)
            after = last.sequence
        }
    }

    /// Puts committed events in sequence and releases what is contiguous.
    private func accept(_ events: [EventRecord]) {
        let (released, listeners, scheduleGapCheck) = state.withLock { state in
            for event in events where event.sequence >= state.nextSequence {
                state.pending[event.sequence] = event
            }
            return release(&state)
        }
        for listener in listeners { listener(released) }
        if scheduleGapCheck { startGapCheck() }
    }

    /// Releases the contiguous run of pending events; delivers them to subscriptions under the
    /// lock so that every subscription sees one order. Returns them with the listeners to call,
    /// and whether a gap check should be started.
    private func release(_ state: inout State) -> ([EventRecord], [Listener], Bool) {
        var released: [EventRecord] = []
        while let event = state.pending.removeValue(forKey: state.nextSequence) {
            released.append(event)
            state.nextSequence += 1
        }
        if !released.isEmpty {
            state.recent.append(contentsOf: released)
            if state.recent.count > recentCapacity { state.recent.removeFirst(state.recent.count - recentCapacity) }
            // Each event's frame is encoded once, for the first stream that carries it, and shared.
            var frames: [SharedFrame?] = Array(repeating: nil, count: released.count)
            for (id, subscription) in Array(state.subscriptions) {
                for (index, event) in released.enumerated() where subscription.filter.matches(event) {
                    // A stream cut meanwhile (below) gets nothing more.
                    guard state.subscriptions[id] != nil else { break }
                    if frames[index] == nil { frames[index] = SharedFrame(EventStreamController.frame(event)) }
                    if !subscription.offer(frame: frames[index]!) {
                        state.subscriptions.removeValue(forKey: id)
                        break
                    }
                    // All streams together hold too much: cut the ones furthest behind first.
                    if memory.isOverLimit { cutSlowest(&state) }
                }
            }
        }
        let needsGapCheck = !state.pending.isEmpty && !state.gapCheckScheduled
        if needsGapCheck { state.gapCheckScheduled = true }
        return (released, released.isEmpty ? [] : Array(state.listeners.values), needsGapCheck)
    }

    /// Cuts the subscriptions holding the most until the streams are within their memory bound.
    private func cutSlowest(_ state: inout State) {
        let slowest = state.subscriptions.values.sorted { $0.bufferedBytes > $1.bufferedBytes }
        for subscription in slowest where memory.isOverLimit {
            subscription.cut()
            state.subscriptions.removeValue(forKey: subscription.id)
        }
    }

    private func startGapCheck() {
        Task {
            try? await Task.sleep(for: gapTimeout)
            await resolveGap()
        }
    }

    /// Fills a gap in the sequence from the store, skipping sequences that do not exist.
    func resolveGap() async {
        let range = state.withLock { state -> (Int64, Int64)? in
            guard let lowestPending = state.pending.keys.min() else {
                state.gapCheckScheduled = false
                return nil
            }
            return (state.nextSequence - 1, lowestPending - 1)
        }
        guard let (after, through) = range else { return }
        let found: [EventRecord]
        do {
            // A missing sequence may belong to a transaction still running (PostgreSQL takes
            // sequences before commit, and a 1,000-task batch takes a while): wait until every
            // transaction open now has ended before deciding it will never exist.
            let fence = try await store.eventFence()
            while try await !store.hasSettled(fence) {
                try await Task.sleep(for: gapTimeout / 4)
            }
            found = try await store.events(after: after, through: through, matching: EventFilter(), limit: 100_000)
        } catch {
            // The store cannot tell; try again later rather than skip events that may exist.
            state.withLock { $0.gapCheckScheduled = false }
            startGapCheck()
            return
        }
        let (released, listeners, again) = state.withLock { state in
            for event in found where event.sequence >= state.nextSequence { state.pending[event.sequence] = event }
            // Everything up to `through` that the store does not have will never exist: every
            // transaction that could still have written it has ended.
            while state.nextSequence <= through && state.pending[state.nextSequence] == nil {
                state.nextSequence += 1
            }
            state.gapCheckScheduled = false
            return release(&state)
        }
        for listener in listeners { listener(released) }
        if again { startGapCheck() }
    }

    // MARK: Listeners

    /// Registers a hook called with every batch of released events; it must not block.
    @discardableResult
    public func listen(_ listener: @escaping Listener) -> UUID {
        let id = UUID()
        state.withLock { $0.listeners[id] = listener }
        return id
    }

    // MARK: Subscriptions

    /// Opens a live subscription. Returns it with the watermark: every released event up to the
    /// watermark is for the caller to replay; every later one arrives on the subscription.
    func subscribe(
        filter: EventFilter, userID: String?, apiTokenID: String? = nil, sessionGeneration: Int? = nil, expiresAt: Date?,
        capacity: Int, byteCapacity: Int = .max, onOverflow: @escaping @Sendable () -> Void
    ) -> (subscription: EventSubscription, watermark: Int64) {
        let subscription = EventSubscription(
            filter: filter, userID: userID, apiTokenID: apiTokenID, sessionGeneration: sessionGeneration,
            expiresAt: expiresAt, capacity: capacity, byteCapacity: byteCapacity, memory: memory, onOverflow: onOverflow)
        let watermark = state.withLock { state in
            state.subscriptions[subscription.id] = subscription
            return state.nextSequence - 1
        }
        return (subscription, watermark)
    }

    func unsubscribe(_ subscription: EventSubscription) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: subscription.id) }
    }

    /// Released events with `after < sequence <= through` matching `filter`, when all of them
    /// are still in memory; `nil` when the store must be read.
    func recentEvents(after: Int64, through: Int64, matching filter: EventFilter) -> [EventRecord]? {
        state.withLock { state in
            guard after >= through || (state.recent.first.map { $0.sequence <= after + 1 } ?? false) else { return nil }
            return state.recent.filter { $0.sequence > after && $0.sequence <= through && filter.matches($0) }
        }
    }

    /// Live subscriptions.
    public var subscriptionCount: Int { state.withLock { $0.subscriptions.count } }

    /// Closes every subscription of `userID` (deactivated, demoted).
    func revoke(userID: String) {
        closeSubscriptions(.revoked) { $0.userID == userID }
    }

    /// Closes the subscriptions of user `userID` that the user as stored now (`nil`: deleted)
    /// no longer allows: the user was deactivated or lost the viewer role, or, for a login
    /// token, the user's sessions were ended since it was issued.
    func recheck(userID: String, against user: UserRecord?) {
        closeSubscriptions(.revoked) { subscription in
            guard subscription.userID == userID else { return false }
            guard let user, user.isActive, user.role.satisfies(.viewer) else { return true }
            return subscription.sessionGeneration.map { $0 != user.tokenGeneration } ?? false
        }
    }

    /// Closes the subscriptions `predicate` selects.
    func closeSubscriptions(_ reason: EventSubscription.CloseReason, where predicate: (EventSubscription) -> Bool) {
        let closing = state.withLock { state -> [EventSubscription] in
            let selected = state.subscriptions.values.filter(predicate)
            for subscription in selected { state.subscriptions.removeValue(forKey: subscription.id) }
            return selected
        }
        for subscription in closing { subscription.close(reason) }
    }

    /// Every subscription, for the periodic ticks.
    func allSubscriptions() -> [EventSubscription] {
        state.withLock { Array($0.subscriptions.values) }
    }
}
