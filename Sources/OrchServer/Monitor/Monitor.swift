import Foundation
import Logging
import OrchModels
import OrchStore
import ServiceLifecycle
import Synchronization

/// When the monitor last sampled, for `/health`.
final class MonitorHeartbeat: Sendable {
    /// Seconds between samples.
    let interval: Duration
    private let last: Mutex<ContinuousClock.Instant>

    init(interval: Duration, now: ContinuousClock.Instant = .now) {
        self.interval = interval
        last = Mutex(now)
    }

    func record(_ instant: ContinuousClock.Instant = .now) {
        last.withLock { $0 = instant }
    }

    /// Healthy while a sample (or, before the first, the monitor's creation) is at most three
    /// intervals old (and never less than 5 s, so a slow sample is not a failure).
    func isHealthy(now: ContinuousClock.Instant = .now) -> Bool {
        now - last.withLock { $0 } <= max(interval * 3, .seconds(5))
    }
}

/// The `monitor` component: every interval (`ORCH_MONITOR_INTERVAL`, default 10 s) it samples
/// queue depth and oldest queued age per core, lock waits, database latency and process
/// memory; updates the metrics gauges; and raises `system.alert` when a threshold
/// (``AlertThresholds``) is crossed (`level` `warning`, `state` `firing`; `critical` when the
/// database does not answer) and again when it clears (`level` `info`, `state` `resolved`).
/// Each alert's data holds `alert`, `state`, `value`, `threshold` and, for queue alerts,
/// `core_id`.
///
/// Every node samples (for its own `/metrics`), but only the leader (``ClusterState/isLeader``)
/// raises alerts, so that one database with several nodes gets each alert once. A node that
/// does not lead keeps no alert state: when it becomes the leader, what fires then is raised.
struct Monitor: Service {
    let store: any Store
    let locks: LockManager
    let alerts: SystemAlerts
    let metrics: OrchMetrics
    let heartbeat: MonitorHeartbeat
    let thresholds: AlertThresholds
    let cluster: ClusterState
    let logger: Logger

    func run() async throws {
        var rules = AlertRules(thresholds: thresholds)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let sample = await SystemSample.take(store: store, locks: locks)
            metrics.update(with: sample)
            metrics.counter(MetricsCatalog.monitorSamples).increment()
            if cluster.isLeader {
                let (firing, resolved) = rules.evaluate(sample)
                for condition in firing { await raise(condition, state: "firing") }
                for condition in resolved { await raise(condition, state: "resolved") }
            } else {
                rules = AlertRules(thresholds: thresholds)
            }
            heartbeat.record()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: heartbeat.interval) }
            } catch {
                break
            }
        }
    }

    private func raise(_ condition: AlertCondition, state: String) async {
        let level: SystemAlerts.Level =
            state == "resolved" ? .info : condition.alert == "database" ? .critical : .warning
        var data: [String: JSONValue] = [
            "alert": .string(condition.alert), "state": .string(state), "value": .double(condition.value),
            "threshold": .double(condition.threshold),
        ]
        if let core = condition.coreID { data["core_id"] = .string(core) }
        let message = state == "resolved" ? "Resolved: \(condition.message)" : condition.message
        logger.log(level: state == "resolved" ? .notice : .warning, "monitor: \(message)")
        do {
            try await alerts.raise(level, message, data: data)
        } catch {
            logger.error("monitor: could not store an alert", metadata: ["error": "\(error)"])
        }
    }
}
