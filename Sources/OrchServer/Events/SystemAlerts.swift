import Foundation
import OrchCore
import OrchModels
import OrchStore

/// Raises `system.alert` events: stored like every event, then published to the streams.
public struct SystemAlerts: Sendable {
    /// How serious an alert is.
    public enum Level: String, Sendable {
        case info, warning, critical
    }

    let store: any Store
    let bus: EventBus

    /// Stores and publishes a `system.alert` with `level`, `message` and any extra `data`.
    @discardableResult
    public func raise(_ level: Level, _ message: String, data: [String: JSONValue] = [:]) async throws -> EventRecord {
        var payload = data
        payload["level"] = .string(level.rawValue)
        payload["message"] = .string(message)
        let events = try await store.appendEvents(
            [EventDraft(type: .systemAlert, timestamp: Date(), data: payload)], taskID: nil, coreID: nil)
        bus.publish(events)
        return events[0]
    }
}
