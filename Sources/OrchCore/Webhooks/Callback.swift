import Foundation
import OrchModels

/// Task callbacks: when a task with `metadata.callback_url` completes, fails or is cancelled,
/// the server POSTs the reference's webhook payload there.
public enum Callback {
    /// The events that trigger a callback, and the `status` each reports.
    public static let triggers: [String: String] = [
        "task.completed": "success", "task.failed": "failure", "task.cancelled": "cancelled",
    ]

    /// The callback URL in `metadata`, if it is a string.
    public static func url(in metadata: [String: JSONValue]) -> String? {
        metadata["callback_url"]?.stringValue
    }

    /// Checks a callback URL at dispatch: http(s) with a host, and the host allowed by
    /// `allowedHosts` (exact names or `*.domain` patterns; empty allows any host).
    public static func validate(_ text: String, allowedHosts: [String]) throws(OrchError) {
        let field = "metadata.callback_url"
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host?.lowercased(), !host.isEmpty
        else {
            throw .invalidParameter(field, "must be an http or https URL")
        }
        guard allowedHosts.isEmpty || allowedHosts.contains(where: { matches(host: host, pattern: $0.lowercased()) }) else {
            throw .invalidParameter(field, "host \(host) is not allowed (ORCH_CALLBACK_ALLOWED_HOSTS)")
        }
    }

    static func matches(host: String, pattern: String) -> Bool {
        if pattern.hasPrefix("*.") {
            let suffix = pattern.dropFirst(1)
            return host.hasSuffix(suffix) && host.count > suffix.count
        }
        return host == pattern
    }

    /// The callback body for `event` of `task`: `event`, `task_id`, `core_id`, `status`,
    /// `timestamp` (unix seconds) and `data` (the event's data), written with sorted keys and
    /// compact separators so that the exact bytes are also what Python's `json.dumps(payload,
    /// sort_keys=True, separators=(',', ':'))` produces from them.
    public static func body(for event: EventRecord, task: TaskRecord) -> [UInt8] {
        let payload: JSONValue = [
            "event": .string(event.type),
            "task_id": .string(task.id),
            "core_id": .string(task.coreID),
            "status": .string(triggers[event.type] ?? task.status.rawValue),
            "timestamp": .int(Int64(event.timestamp.timeIntervalSince1970)),
            "event_id": .string(event.apiValue.eventID),
            "data": .object(event.data),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(payload)).map { [UInt8]($0) } ?? Array("{}".utf8)
        // Normalise to Python's form (ensure_ascii, float repr), so both verification styles pass.
        return (try? PythonJSON.canonical(json)) ?? json
    }
}
