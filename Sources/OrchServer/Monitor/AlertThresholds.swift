import Foundation

/// When the monitor raises `system.alert` (`ORCH_ALERT_THRESHOLDS`). A threshold of 0 turns
/// that alert off.
public struct AlertThresholds: Sendable, Hashable {
    /// Queued tasks on one core. Default 1000 (`queue_depth`).
    public var queueDepth: Double = 1000
    /// Seconds the longest-waiting queued task of a core has been claimable. Default 300
    /// (`queue_age`).
    public var queueAge: Double = 300
    /// Seconds the longest-waiting lock request has waited. Default 60 (`lock_wait`).
    public var lockWait: Double = 60
    /// Milliseconds a trivial database query takes. Default 500 (`db_latency_ms`).
    public var databaseLatencyMilliseconds: Double = 500
    /// Resident memory in MiB. Default 2048 (`memory_mb`).
    public var memoryMegabytes: Double = 2048

    public init() {}

    /// The names `ORCH_ALERT_THRESHOLDS` takes, with the property each sets (immutable; key
    /// paths are not marked Sendable).
    nonisolated(unsafe) static let names: [(String, WritableKeyPath<AlertThresholds, Double>)] = [
        ("queue_depth", \.queueDepth), ("queue_age", \.queueAge), ("lock_wait", \.lockWait),
        ("db_latency_ms", \.databaseLatencyMilliseconds), ("memory_mb", \.memoryMegabytes),
    ]

    /// `name=value` pairs, comma-separated; names not given keep their default.
    init(parsing text: String) throws(ConfigurationError) {
        self.init()
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let keyPath = Self.names.first(where: { $0.0 == parts[0] })?.1,
                let value = Double(parts[1]), value >= 0, value.isFinite
            else {
                throw ConfigurationError(
                    "ORCH_ALERT_THRESHOLDS: expected name=number pairs for \(Self.names.map(\.0).joined(separator: ", ")) (got '\(entry)')")
            }
            self[keyPath: keyPath] = value
        }
    }

    /// The `name=value` form.
    var description: String {
        Self.names.map { name, keyPath in
            let value = self[keyPath: keyPath]
            return "\(name)=\(value == value.rounded() ? String(Int(value)) : String(value))"
        }.joined(separator: ",")
    }
}
