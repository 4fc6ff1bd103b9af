/// Which events a stream wants: by type (exact, or a `prefix.*` pattern), task and core.
/// Every given criterion must match; an empty filter matches everything.
public struct EventFilter: Sendable, Hashable {
    /// Exact event types.
    public var types: Set<String>
    /// Type prefixes, from patterns like `task.*` (stored as `task.`).
    public var typePrefixes: [String]
    public var taskID: String?
    public var coreID: String?

    public init(types: Set<String> = [], typePrefixes: [String] = [], taskID: String? = nil, coreID: String? = nil) {
        self.types = types
        self.typePrefixes = typePrefixes
        self.taskID = taskID
        self.coreID = coreID
    }

    /// Parses the `filter` query parameter: comma-separated types, each exact or ending in `*`.
    /// A lone `*` matches every type.
    public init(filter: String?, taskID: String? = nil, coreID: String? = nil) {
        var types: Set<String> = []
        var prefixes: [String] = []
        for part in (filter ?? "").split(separator: ",") {
            let entry = part.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            if entry.hasSuffix("*") {
                prefixes.append(String(entry.dropLast()))
            } else {
                types.insert(entry)
            }
        }
        self.init(types: types, typePrefixes: prefixes, taskID: taskID, coreID: coreID)
    }

    /// Whether the filter says anything about types.
    public var constrainsType: Bool { !types.isEmpty || !typePrefixes.isEmpty }

    public func matches(_ event: EventRecord) -> Bool {
        if let taskID, event.taskID != taskID { return false }
        if let coreID, event.coreID != coreID { return false }
        guard constrainsType else { return true }
        let type = event.type.rawValue
        return types.contains(type) || typePrefixes.contains { type.hasPrefix($0) }
    }
}

import Foundation
