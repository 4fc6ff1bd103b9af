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

    /// `healthy` when every component is, else `unhealthy`.
    public var status: ComponentStatus
    public var timestamp: Date
    public var version: String
    /// `database`, `lock_manager`, `monitor`, `security`.
    public var components: [String: ComponentStatus]
    public var metrics: Metrics

    public init(
        status: ComponentStatus, timestamp: Date, version: String, components: [String: ComponentStatus],
        metrics: Metrics
    ) {
        self.status = status
        self.timestamp = timestamp
        self.version = version
        self.components = components
        self.metrics = metrics
    }
}
