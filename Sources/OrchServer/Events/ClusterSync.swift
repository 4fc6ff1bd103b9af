import Logging
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
struct ClusterSync: Service {
    let channel: any ClusterChannel
    let bus: EventBus
    let store: any Store
    /// This node (`ORCH_NODE_ID`); its own notices are ignored.
    let nodeID: String
    let logger: Logger
    static let announceInterval: Duration = .milliseconds(5)

    func run() async throws {
        let (wanted, want) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
        let listening = Flag()
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
                        case .connected:
                            listening.value.store(true, ordering: .relaxed)
                            if let last = try? await store.lastEventSequence() { want.yield(last) }
                        case .disconnected:
                            listening.value.store(false, ordering: .relaxed)
                            logger.warning("cluster listener disconnected; polling the store once a second")
                        }
                    }
                }
                group.addTask {
                    for await sequence in wanted { await catchUp(through: sequence) }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        if !listening.value.load(ordering: .relaxed), let last = try? await store.lastEventSequence() {
                            want.yield(last)
                        }
                    }
                }
            }
        }
    }

    /// Whether the listener is connected, shared by the loops of ``run()``.
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private func announce() async {
        for await sequence in bus.announcements {
            do {
                try await channel.announceEvents(node: nodeID, through: sequence)
            } catch {
                logger.debug("cannot announce events", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: Self.announceInterval)
        }
    }

    private func catchUp(through sequence: Int64) async {
        do {
            try await bus.catchUp(through: sequence)
        } catch {
            logger.debug("cannot read other nodes' events", metadata: ["error": "\(error)"])
        }
    }
}
