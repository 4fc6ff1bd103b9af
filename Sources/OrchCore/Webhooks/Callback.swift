import Foundation
import OrchModels

/// Task callbacks: when a task with `metadata.callback_url` completes, fails or is cancelled,
/// the server POSTs the reference's webhook payload there.
public enum Callback {
    /// The events that trigger a callback, and the `status` each reports.
    public static let triggers: [EventType: String] = [
        .taskCompleted: "success", .taskFailed: "failure", .taskCancelled: "cancelled",
    ]

    /// The callback URL in `metadata`, if it is a string.
    public static func url(in metadata: [String: JSONValue]) -> String? {
        metadata["callback_url"]?.stringValue
    }

    /// The callback URLs accepted: `http` or `https`, a host of letters, digits, dots and
    /// hyphens, an optional port, and an optional path and query of URL-safe characters.
    public static let urlPattern =
        "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"

    /// Checks the `callback_url` of a task's metadata, if any (`prefix` locates the metadata in
    /// the request, as in `task.`).
    public static func validate(metadata: [String: JSONValue], allowedHosts: [String], prefix: String = "") throws(OrchError) {
        guard let callback = metadata["callback_url"] else { return }
        do throws(OrchError) {
            guard let url = callback.stringValue else {
                throw OrchError.invalidParameter("metadata.callback_url", "must be an http or https URL")
            }
            try validate(url, allowedHosts: allowedHosts)
        } catch {
            throw prefix.isEmpty ? error : error.located(in: String(prefix.dropLast()))
        }
    }

    /// Checks a callback URL at dispatch: http(s) with a host; the host allowed by
    /// `allowedHosts` (exact names or `*.domain` patterns; empty allows any host); and, unless
    /// named there, not `localhost` nor an address literal inside the network.
    public static func validate(_ text: String, allowedHosts: [String]) throws(OrchError) {
        let field = "metadata.callback_url"
        guard text.utf8.count <= 2048, let host = host(ofURL: text) else {
            throw .invalidParameter(field, "must be an http or https URL")
        }
        let named = isNamed(host, in: allowedHosts)
        guard allowedHosts.isEmpty || named else {
            throw .invalidParameter(field, "host \(host) is not allowed (ORCH_CALLBACK_ALLOWED_HOSTS)")
        }
        if !named, let refusal = refusal(ofHost: host) {
            throw .invalidParameter(field, refusal)
        }
    }

    /// Whether `host` is named by one of `patterns` (exact names or `*.domain`).
    public static func isNamed(_ host: String, in patterns: [String]) -> Bool {
        patterns.contains { matches(host: host, pattern: $0.lowercased()) }
    }

    /// Why a host not named in `ORCH_CALLBACK_ALLOWED_HOSTS` is refused without resolving it:
    /// `localhost`, or an address literal inside the network (``CallbackAddress``); `nil` for
    /// any other host, whose addresses are checked at delivery.
    public static func refusal(ofHost host: String) -> String? {
        if CallbackAddress.isLoopbackName(host) {
            return "host \(host) is the server's own loopback; name it in ORCH_CALLBACK_ALLOWED_HOSTS to allow it"
        }
        if let address = CallbackAddress.literal(host), CallbackAddress.isInternal(address) {
            return refusal(host: host, address: address)
        }
        return nil
    }

    /// The refusal of `host` at `address`.
    public static func refusal(host: String, address: [UInt8]) -> String {
        "address \(CallbackAddress.text(address)) of \(host) is loopback, private, link-local or reserved; "
            + "name the host in ORCH_CALLBACK_ALLOWED_HOSTS to allow it"
    }

    /// The lowercased host of `text` when it matches ``urlPattern`` (checked by hand: no regular
    /// expression engine on the request path), else `nil`.
    public static func host(ofURL text: String) -> String? {
        guard matchesURLPattern(text) else { return nil }
        let afterScheme = text.drop { $0 != "/" }.dropFirst(2)
        return String(afterScheme.prefix { $0 != ":" && $0 != "/" }).lowercased()
    }

    static func matchesURLPattern(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.hasPrefix("https://") {
            rest = rest.dropFirst(8)
        } else if rest.hasPrefix("http://") {
            rest = rest.dropFirst(7)
        } else {
            return false
        }
        let hostEnd = rest.firstIndex { $0 == ":" || $0 == "/" } ?? rest.endIndex
        let host = rest[..<hostEnd]
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ isHostScalar($0) }) else { return false }
        rest = rest[hostEnd...]
        if rest.first == ":" {
            let portEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            let port = rest.dropFirst()[..<portEnd]
            guard (1...5).contains(port.count), port.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) else {
                return false
            }
            rest = rest[portEnd...]
        }
        return rest.unicodeScalars.allSatisfy { isPathScalar($0) }
    }

    private static func isHostScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "-": true
        default: false
        }
    }

    private static func isPathScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9": true
        case ".", "_", "~", "%", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", ":", "@", "/", "?", "-": true
        default: false
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
            "event": .string(event.type.rawValue),
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
