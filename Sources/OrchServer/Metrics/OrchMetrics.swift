import CoreMetrics
import Foundation
import OrchCore
import OrchModels
import Prometheus
import Synchronization

/// The server's metrics, recorded through swift-metrics into this server's own Prometheus
/// registry (one per server, so several servers in one process never mix their figures) and
/// rendered by `GET /metrics` in text format 0.0.4.
///
/// Label values are bounded so that no client can grow the registry without limit: `method`
/// is one of the standard methods or `OTHER`, `endpoint` is the route template (`unmatched`
/// for paths no route has), `status` a three-digit code, and at most
/// ``maximumCoreLabels`` distinct `core_id` values are kept (later cores are counted under
/// `_other`).
public final class OrchMetrics: Sendable {
    /// Distinct `core_id` label values kept before further cores share `_other`.
    public static let maximumCoreLabels = 1000
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    let registry = PrometheusCollectorRegistry()
    let factory: DocumentedMetricsFactory
    private let cores = Mutex<Set<String>>([])
    private let sampledCores = Mutex<Set<String>>([])
    private let reportedCPU = Mutex<Double>(0)
    /// Every handle made so far, by metric name and labels: the registry's own lookup
    /// validates names and hashes labels on every call, so each series is looked up there once.
    /// Label values are bounded (see above), so this stays small.
    private let handles = Mutex<[HandleKey: any Sendable]>([:])

    private struct HandleKey: Hashable {
        let name: String
        let labels: [String]
    }
    let sseConnections: CoreMetrics.Meter
    let connectionsOpen: CoreMetrics.Meter

    public init() {
        factory = DocumentedMetricsFactory(registry: registry)
        sseConnections = CoreMetrics.Meter(label: MetricsCatalog.sseConnections.name, factory: factory)
        sseConnections.set(0)
        connectionsOpen = CoreMetrics.Meter(label: MetricsCatalog.connectionsOpen.name, factory: factory)
        connectionsOpen.set(0)
        for status in ["success", "failure"] {
            _ = counter(MetricsCatalog.webhookSignatures, [("status", status)])
        }
        for series in [MetricsCatalog.tasksRunning, MetricsCatalog.locksHeld, MetricsCatalog.lockWaiters] {
            gauge(series).record(0)
        }
        if let start = ProcessStats.read().startTime { gauge(MetricsCatalog.processStartTime).record(start) }
    }

    // MARK: Handles

    /// The handle of `entry` with `dimensions`, made by `make` the first time.
    private func handle<Handle: Sendable>(
        _ entry: MetricsCatalog.Entry, _ dimensions: [(String, String)], _ make: () -> Handle
    ) -> Handle {
        let key = HandleKey(name: entry.name, labels: dimensions.flatMap { [$0.0, $0.1] })
        return handles.withLock { handles in
            if let made = handles[key] as? Handle { return made }
            let made = make()
            handles[key] = made
            return made
        }
    }

    func counter(_ entry: MetricsCatalog.Entry, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
        handle(entry, dimensions) { CoreMetrics.Counter(label: entry.name, dimensions: dimensions, factory: factory) }
    }

    func gauge(_ entry: MetricsCatalog.Entry, _ dimensions: [(String, String)] = []) -> CoreMetrics.Gauge {
        handle(entry, dimensions) { CoreMetrics.Gauge(label: entry.name, dimensions: dimensions, factory: factory) }
    }

    func histogram(_ entry: MetricsCatalog.Entry, _ dimensions: [(String, String)] = []) -> CoreMetrics.Recorder {
        handle(entry, dimensions) {
            CoreMetrics.Recorder(label: entry.name, dimensions: dimensions, aggregate: true, factory: factory)
        }
    }

    func timer(_ entry: MetricsCatalog.Entry, _ dimensions: [(String, String)] = []) -> CoreMetrics.Timer {
        handle(entry, dimensions) { CoreMetrics.Timer(label: entry.name, dimensions: dimensions, factory: factory) }
    }

    /// `coreID`, or `_other` once ``maximumCoreLabels`` other cores have been seen.
    func coreLabel(_ coreID: String) -> String {
        cores.withLock { cores in
            if cores.contains(coreID) { return coreID }
            guard cores.count < Self.maximumCoreLabels else { return "_other" }
            cores.insert(coreID)
            return coreID
        }
    }

    // MARK: Recording

    /// One answered request.
    func recordRequest(method: String, endpoint: String, status: Int, duration: Duration) {
        let method = Self.knownMethods.contains(method) ? method : "OTHER"
        counter(MetricsCatalog.httpRequests, [("method", method), ("status", String(status)), ("endpoint", endpoint)])
            .increment()
        timer(MetricsCatalog.httpRequestDuration, [("method", method), ("endpoint", endpoint)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Task counters and durations from committed events.
    func recordEvents(_ events: [EventRecord]) {
        for event in events {
            guard let coreID = event.coreID else {
                continue
            }
            switch event.type {
            case .taskCreated:
                counter(MetricsCatalog.tasksDispatched, [("core_id", coreLabel(coreID))]).increment()
                if event.data["schedule_id"] != nil {
                    counter(MetricsCatalog.scheduleFirings, [("core_id", coreLabel(coreID))]).increment()
                }
            case .taskRequeued:
                if event.data["reason"] == "retry" || event.data["reason"] == "lease_expired" {
                    counter(MetricsCatalog.taskRetries, [("core_id", coreLabel(coreID))]).increment()
                }
            case .taskCompleted, .taskFailed, .taskCancelled:
                let core = coreLabel(coreID)
                let outcome = String(event.type.rawValue.dropFirst("task.".count))
                counter(MetricsCatalog.tasksFinished, [("core_id", core), ("outcome", outcome)]).increment()
                if event.type != .taskCancelled, let duration = event.data["duration"]?.doubleValue {
                    histogram(MetricsCatalog.taskDuration, [("core_id", core)]).record(duration)
                }
            default:
                continue
            }
        }
    }

    func recordSignatureCheck(verified: Bool) {
        counter(MetricsCatalog.webhookSignatures, [("status", verified ? "success" : "failure")]).increment()
    }

    func recordRateLimited(role: String) {
        counter(MetricsCatalog.rateLimited, [("role", role)]).increment()
    }

    func recordPruned(tasks: Int, events: Int) {
        if tasks > 0 { counter(MetricsCatalog.tasksPruned).increment(by: tasks) }
        if events > 0 { counter(MetricsCatalog.eventsPruned).increment(by: events) }
    }

    func recordCallbackAttempt(outcome: String) {
        counter(MetricsCatalog.callbackDeliveries, [("outcome", outcome)]).increment()
    }

    func recordConnectionRefused(reason: String) {
        counter(MetricsCatalog.connectionsRefused, [("reason", reason)]).increment()
    }

    func recordConnectionClosed(reason: String) {
        counter(MetricsCatalog.connectionsClosed, [("reason", reason)]).increment()
    }

    func recordLockWait(_ duration: Duration) {
        histogram(MetricsCatalog.lockWait).record(duration.seconds)
    }

    // MARK: Sampled values

    /// Sets the gauges that describe the current state: queues, running tasks, locks, process.
    func update(with sample: SystemSample) {
        let seen = Set(sample.queues.map { coreLabel($0.coreID) })
        // Cores whose queue emptied since the last sample go to 0 rather than keeping a stale value.
        let emptied = sampledCores.withLock { previous in
            defer { previous = seen }
            return previous.subtracting(seen)
        }
        for core in emptied {
            gauge(MetricsCatalog.queueDepth, [("core_id", core)]).record(0)
            gauge(MetricsCatalog.queueOldestAge, [("core_id", core)]).record(0)
            gauge(MetricsCatalog.tasksScheduled, [("core_id", core)]).record(0)
        }
        var depths: [String: Int] = [:]
        var scheduled: [String: Int] = [:]
        var ages: [String: Double] = [:]
        for queue in sample.queues {
            let core = coreLabel(queue.coreID)
            depths[core, default: 0] += queue.depth
            scheduled[core, default: 0] += queue.scheduled
            ages[core] = max(ages[core] ?? 0, sample.age(of: queue))
        }
        for (core, depth) in depths {
            gauge(MetricsCatalog.queueDepth, [("core_id", core)]).record(depth)
            gauge(MetricsCatalog.queueOldestAge, [("core_id", core)]).record(ages[core] ?? 0)
            gauge(MetricsCatalog.tasksScheduled, [("core_id", core)]).record(scheduled[core] ?? 0)
        }
        if let running = sample.runningTasks { gauge(MetricsCatalog.tasksRunning).record(running) }
        if let held = sample.heldLocks { gauge(MetricsCatalog.locksHeld).record(held) }
        gauge(MetricsCatalog.lockWaiters).record(sample.lockWaiters)
        if let latency = sample.databaseLatency { gauge(MetricsCatalog.databaseLatency).record(latency) }
        updateProcess(sample.process)
    }

    private func updateProcess(_ process: ProcessStats) {
        if let value = process.residentBytes { gauge(MetricsCatalog.processResidentMemory).record(value) }
        if let value = process.virtualBytes { gauge(MetricsCatalog.processVirtualMemory).record(value) }
        if let value = process.openFileDescriptors { gauge(MetricsCatalog.processOpenFDs).record(value) }
        if let value = process.maxFileDescriptors { gauge(MetricsCatalog.processMaxFDs).record(value) }
        if let cpu = process.cpuSeconds {
            // A counter only goes up: add what was used since the last reading.
            let delta = reportedCPU.withLock { reported -> Double in
                let delta = max(0, cpu - reported)
                reported = max(reported, cpu)
                return delta
            }
            handle(MetricsCatalog.processCPU, []) {
                FloatingPointCounter(label: MetricsCatalog.processCPU.name, dimensions: [], factory: factory)
            }.increment(by: delta)
        }
    }

    /// The registry in Prometheus text format 0.0.4.
    func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
