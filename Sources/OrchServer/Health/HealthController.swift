import Foundation
import Hummingbird
import OrchModels
import OrchStore

/// `GET /health`: public; 200 when every component is healthy, else 503 with the same body.
struct HealthController {
    let store: any Store
    let requestCounter: RequestCounter
    let startedAt: ContinuousClock.Instant
    /// Whether access tokens can be issued and verified (a signing key is loaded).
    let securityReady: Bool
    /// The monitor's last sample: `monitor` is unhealthy when it stopped sampling.
    let monitor: MonitorHeartbeat
    /// This node and its listener.
    let cluster: ClusterState

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/health", access: .public, handler: health)
    }

    @Sendable func health(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let database: HealthReport.ComponentStatus
        do {
            try await store.ping()
            database = .healthy
        } catch {
            context.logger.error("health: database check failed", metadata: ["error": "\(error)"])
            database = .unhealthy
        }
        let runningTasks = database == .healthy ? (try? await store.countTasks(status: .running)) ?? 0 : 0
        let heldLocks = database == .healthy ? (try? await store.countHeldLocks()) : nil
        let components: [String: HealthReport.ComponentStatus] = [
            "database": database,
            // The lock manager answers when its table can be read.
            "lock_manager": heldLocks == nil ? .unhealthy : .healthy,
            "monitor": monitor.isHealthy() ? .healthy : .unhealthy,
            "security": securityReady ? .healthy : .unhealthy,
        ]
        let healthy = components.values.allSatisfy { $0 == .healthy }
        let uptime = ContinuousClock.now - startedAt
        let report = HealthReport(
            status: healthy ? .healthy : .unhealthy, timestamp: Date(), version: OrchVersion.current,
            components: components,
            metrics: .init(
                uptimeSeconds: Int(uptime.components.seconds), totalRequests: requestCounter.value, activeTasks: runningTasks,
                activeLocks: heldLocks ?? 0),
            node: .init(id: cluster.nodeID, leader: cluster.isLeader, listener: cluster.listener))
        return try .json(report, status: healthy ? .ok : .serviceUnavailable)
    }
}
