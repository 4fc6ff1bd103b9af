import Logging
import OrchModels
import OrchStore
import ServiceLifecycle
import Synchronization

/// Keeps this node's event bus in step with the database's other nodes (PostgreSQL), so that
/// streams, claim wake-ups and everything else listening on the bus see every event written
/// through any node, in sequence order.
///
/// - Out: after this node publishes events, the highest sequence is announced (NOTIFY), at most
///   once per ``announceInterval``: NOTIFY serialises the commits of the whole database, so a
///   busy node sends one notice per interval, not one per transaction.
/// - In: a notice from another node makes the bus read the events up to the announced sequence
///   (``EventBus/catchUp(through:)``); only the newest pending notice is kept. After the
///   listener (re)connects it catches up to the newest stored event, since anything may have
///   been missed, and while it is down the store is polled once a second instead.
/// - Users: a notice that another node changed a user ends this node's streams the user may no
///   longer have (``EventBus/recheck(userID:against:)``) at once.
struct ClusterSync: Service {
    let channel: any ClusterChannel
    let bus: EventBus
    let store: any Store
    /// This node (its own notices are ignored) and whether it listens.
    let state: ClusterState
    let logger: Logger
    var nodeID: String { state.nodeID }
    static let announceInterval: Duration = .milliseconds(20)
    /// The shortest pause between two catch-ups: notices that come meanwhile are served by
    /// one read, so a node reads the others' events at most this often however many announce.
    static let catchUpInterval: Duration = .milliseconds(20)

    func run() async throws {
        let (wanted, want) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
        try await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await announce() }
                group.addTask {
                    await channel.listen { notice in
                        switch notice {
                        case .events(let node, let sequence) where node != nodeID:
                            want.yield(sequence)
                        case .events:
                            break
                        case .userChanged(let userID):
                            // The node that made the change closed its own streams of the user.
                            if let user = try? await store.user(id: userID) { bus.recheck(userID: userID, against: user) }
                        case .connected:
                            state.setListening(true)
                            if let last = try? await store.lastEventSequence() { want.yield(last) }
                        case .disconnected:
                            state.setListening(false)
                            logger.warning("cluster listener disconnected; polling the store once a second")
                        }
                    }
                }
                group.addTask {
                    for await sequence in wanted {
                        await catchUp(through: sequence)
                        try? await Task.sleep(for: Self.catchUpInterval)
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        if state.listener != .connected, let last = try? await store.lastEventSequence() {
                            want.yield(last)
                        }
                    }
                }
            }
        }
    }

    private func announce() async {
        for await sequence in bus.announcements {
            await retrying("cannot announce events") { try await channel.announceEvents(node: nodeID, through: sequence) }
            try? await Task.sleep(for: Self.announceInterval)
        }
    }

    private func catchUp(through sequence: Int64) async {
        await retrying("cannot read other nodes' events") { try await bus.catchUp(through: sequence) }
    }

    /// Runs `work` until it succeeds, up to ``attempts`` times with growing pauses. A notice that
    /// is not sent, or not acted on, is not sent again by anyone: when it was about the last
    /// event written for a while, the other nodes' streams would wait for it until the next one
    /// (seen in the multi-node test under load: a stream lacked the last of 1,150 events).
    private func retrying(_ failure: String, _ work: () async throws -> Void) async {
        for attempt in 1...Self.attempts {
            do {
                try await work()
                return
            } catch {
                if attempt == Self.attempts || Task.isCancelled {
                    logger.warning("\(failure)", metadata: ["error": "\(error)", "attempts": "\(attempt)"])
                    return
                }
                try? await Task.sleep(for: .milliseconds(25 << min(attempt, 6)))
            }
        }
    }

    static let attempts = 8
}

/// This node among the nodes of one database: its id and whether its listener hears the others
/// (``ClusterSync``), for `/health` and `/metrics`.
final class ClusterState: Sendable {
    let nodeID: String
    /// Whether there can be other nodes (PostgreSQL).
    let clustered: Bool
    private let listening = Atomic<Bool>(false)
    private let leading: Atomic<Bool>
    private let metrics: OrchMetrics?

    init(nodeID: String, clustered: Bool, metrics: OrchMetrics? = nil) {
        self.nodeID = nodeID
        self.clustered = clustered
        self.metrics = metrics
        leading = Atomic(!clustered)
        metrics?.gauge(MetricsCatalog.nodeInfo, [("node_id", nodeID)]).record(1)
        metrics?.gauge(MetricsCatalog.clusterLeader).record(clustered ? 0 : 1)
        if clustered { metrics?.gauge(MetricsCatalog.clusterListener).record(0) }
    }

    /// Whether this node leads (``Leadership``); the only node of a SQLite store always does.
    var isLeader: Bool { leading.load(ordering: .relaxed) }

    func setLeading(_ leads: Bool) {
        leading.store(leads, ordering: .relaxed)
        metrics?.gauge(MetricsCatalog.clusterLeader).record(leads ? 1 : 0)
    }

    var listener: HealthReport.Node.Listener {
        guard clustered else { return .none }
        return listening.load(ordering: .relaxed) ? .connected : .disconnected
    }

    func setListening(_ up: Bool) {
        listening.store(up, ordering: .relaxed)
        metrics?.gauge(MetricsCatalog.clusterListener).record(up ? 1 : 0)
    }
}

/// Takes part in the election of the database's leader (``OrchStore/ClusterChannel/lead(_:)``)
/// and keeps ``ClusterState/isLeader`` true while this node leads. What must happen once for
/// the whole cluster and cannot be decided by the rows themselves (the monitor's alerts) is
/// done by the leader only; the rest of the background work (lease expiry, timeouts, lock
/// expiry, callbacks) runs on every node and takes its rows with `SKIP LOCKED` or under the
/// row's lock, so that it is done once and goes on while a new leader is chosen.
struct Leadership: Service {
    let channel: any ClusterChannel
    let state: ClusterState
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            await channel.lead { leads in
                state.setLeading(leads)
                logger.notice(leads ? "this node leads" : "this node no longer leads", metadata: ["node_id": "\(state.nodeID)"])
            }
        }
        state.setLeading(false)
    }
}
