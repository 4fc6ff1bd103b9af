import Foundation

/// `GET /health` response body.
public struct HealthReport: Codable, Sendable, Hashable {
    /// A component's state.
    public enum ComponentStatus: String, Codable, Sendable, Hashable {
        case healthy
        case unhealthy
    }

    /// The server's counters shown by `/health`.
    public struct Metrics: Codable, Sendable, Hashable {
        public var uptimeSeconds: Int
        public var totalRequests: Int
        public var activeTasks: Int
        public var activeLocks: Int

        public init(uptimeSeconds: Int, totalRequests: Int, activeTasks: Int, activeLocks: Int) {
            self.uptimeSeconds = uptimeSeconds
            self.totalRequests = totalRequests
            self.activeTasks = activeTasks
            self.activeLocks = activeLocks
        }

        enum CodingKeys: String, CodingKey {
            case uptimeSeconds = "uptime_seconds"
            case totalRequests = "total_requests"
            case activeTasks = "active_tasks"
            case activeLocks = "active_locks"
        }
    }

    /// The node that answered, among the nodes of one database.
    public struct Node: Codable, Sendable, Hashable {
        /// Whether the node hears the database's other nodes (PostgreSQL's LISTEN): `none` on
        /// SQLite, which serves one node.
        public enum Listener: String, Codable, Sendable, Hashable {
            case connected, disconnected, none
        }

        /// `ORCH_NODE_ID`, generated at start when unset.
        public var id: String
        /// Whether this node leads the database's nodes (it raises the monitor's alerts);
        /// always true on SQLite.
        public var leader: Bool
        public var listener: Listener

        public init(id: String, leader: Bool, listener: Listener) {
            self.id = id
            self.leader = leader
            self.listener = listener
        }
    }

    /// `healthy` when every component is, else `unhealthy`.
    public var status: ComponentStatus
    public var timestamp: Date
    public var version: String
    /// `database`, `lock_manager`, `monitor`, `security`.
    public var components: [String: ComponentStatus]
    public var metrics: Metrics
    /// Not in the reference's examples (so optional when decoding); the server always sends it.
    public var node: Node?

    public init(
        status: ComponentStatus, timestamp: Date, version: String, components: [String: ComponentStatus],
        metrics: Metrics, node: Node?
    ) {
        self.status = status
        self.timestamp = timestamp
        self.version = version
        self.components = components
        self.metrics = metrics
        self.node = node
    }
}
