import Foundation

/// A condition the monitor watches, as found in one sample.
struct AlertCondition: Sendable, Hashable {
    /// Which check: `queue_depth`, `queue_age`, `lock_wait`, `db_latency`, `memory`,
    /// `database`.
    var alert: String
    /// The core, for per-core checks.
    var coreID: String?
    var value: Double
    var threshold: Double
    var message: String

    /// One alert per check and core.
    var key: String { coreID.map { "\(alert):\($0)" } ?? alert }
}

/// Turns samples into the alerts to raise: a condition is reported once when it starts
/// (`firing`) and once when a later sample no longer shows it (`resolved`).
struct AlertRules: Sendable {
    let thresholds: AlertThresholds
    private(set) var active: [String: AlertCondition] = [:]

    init(thresholds: AlertThresholds) {
        self.thresholds = thresholds
    }

    /// The conditions `sample` crosses.
    func conditions(in sample: SystemSample) -> [AlertCondition] {
        var found: [AlertCondition] = []
        func check(_ alert: String, core: String? = nil, value: Double, threshold: Double, _ message: String) {
            guard threshold > 0, value > threshold else { return }
            found.append(AlertCondition(alert: alert, coreID: core, value: value, threshold: threshold, message: message))
        }
        guard let latency = sample.databaseLatency else {
            found.append(
                AlertCondition(
                    alert: "database", coreID: nil, value: 1, threshold: 0, message: "The database does not answer"))
            return found
        }
        for queue in sample.queues {
            check(
                "queue_depth", core: queue.coreID, value: Double(queue.depth), threshold: thresholds.queueDepth,
                "Core \(queue.coreID) has \(queue.depth) queued tasks (threshold \(Self.format(thresholds.queueDepth)))")
            let age = sample.age(of: queue)
            check(
                "queue_age", core: queue.coreID, value: age, threshold: thresholds.queueAge,
                "The oldest queued task of core \(queue.coreID) has waited \(Self.format(age)) s (threshold \(Self.format(thresholds.queueAge)) s)")
        }
        check(
            "lock_wait", value: sample.longestLockWait, threshold: thresholds.lockWait,
            "A lock request has waited \(Self.format(sample.longestLockWait)) s (threshold \(Self.format(thresholds.lockWait)) s)")
        let milliseconds = latency * 1000
        check(
            "db_latency", value: milliseconds, threshold: thresholds.databaseLatencyMilliseconds,
            "A database round trip took \(Self.format(milliseconds)) ms (threshold \(Self.format(thresholds.databaseLatencyMilliseconds)) ms)")
        if let resident = sample.process.residentBytes {
            let megabytes = Double(resident) / 1_048_576
            check(
                "memory", value: megabytes, threshold: thresholds.memoryMegabytes,
                "Resident memory is \(Self.format(megabytes)) MiB (threshold \(Self.format(thresholds.memoryMegabytes)) MiB)")
        }
        return found
    }

    /// Compares `sample` with the conditions already reported: returns those that start now
    /// and those (as last seen) that ended.
    mutating func evaluate(_ sample: SystemSample) -> (firing: [AlertCondition], resolved: [AlertCondition]) {
        let current = Dictionary(conditions(in: sample).map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let firing = current.filter { active[$0.key] == nil }.map(\.value).sorted { $0.key < $1.key }
        let resolved = active.filter { current[$0.key] == nil }.map(\.value).sorted { $0.key < $1.key }
        for condition in resolved { active[condition.key] = nil }
        for condition in firing { active[condition.key] = condition }
        return (firing, resolved)
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.1f", value)
    }
}
