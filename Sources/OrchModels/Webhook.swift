import Foundation

/// `POST /webhook` answer (200).
public struct WebhookReceipt: Codable, Sendable, Hashable {
    /// Always `received`.
    public var status: String
    /// The stored `webhook.received` event.
    public var eventID: String
    public var processedAt: Date
    /// `webhook-<uuid>`; a replay of the same signed request answers the same id.
    public var webhookID: String
    /// Whether a named task was updated; `nil` when the event names no task.
    public var taskUpdated: Bool?
    /// Why the task was not updated (`task_not_found`, or the conflict's message).
    public var taskUpdateError: String?

    public init(
        eventID: String, processedAt: Date, webhookID: String, taskUpdated: Bool? = nil, taskUpdateError: String? = nil
    ) {
        self.status = "received"
        self.eventID = eventID
        self.processedAt = processedAt
        self.webhookID = webhookID
        self.taskUpdated = taskUpdated
        self.taskUpdateError = taskUpdateError
    }

    enum CodingKeys: String, CodingKey {
        case status
        case eventID = "event_id"
        case processedAt = "processed_at"
        case webhookID = "webhook_id"
        case taskUpdated = "task_updated"
        case taskUpdateError = "task_update_error"
    }
}
