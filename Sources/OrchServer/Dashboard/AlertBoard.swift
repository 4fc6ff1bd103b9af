import Foundation
import OrchCore
import OrchModels
import Synchronization

/// The alerts that are firing (`GET /alerts`, the overview's "Open alerts"): the latest
/// `system.alert` with `state: "firing"` of each alert (kind and core), until one with
/// `state: "resolved"` follows. Kept from the event bus, which releases every node's events, so
/// each node shows the leader's monitor's alerts. It holds what was raised since the node
/// started: an alert raised earlier, and still firing, shows once the monitor raises it again
/// (the monitor raises afresh when the leader changes or restarts).
final class AlertBoard: Sendable {
    private let open = Mutex<[String: EventRecord]>([:])

    func record(_ events: [EventRecord]) {
        for event in events where event.type == .systemAlert {
            guard case .string(let kind)? = event.data["alert"] else { continue }
            var key = kind
            if case .string(let core)? = event.data["core_id"] { key += "/" + core }
            let resolved = event.data["state"] == "resolved"
            open.withLock { open in
                if resolved { open[key] = nil } else { open[key] = event }
            }
        }
    }

    /// The firing alerts, newest first.
    var firing: [EventRecord] {
        open.withLock { Array($0.values) }.sorted { $0.sequence > $1.sequence }
    }
}
