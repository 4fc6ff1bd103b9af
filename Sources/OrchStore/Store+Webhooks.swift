import Foundation
import OrchCore

/// Receipts of incoming webhooks, so that a replayed request gets the first answer and is not
/// processed twice (also across restarts).
public protocol WebhookStore: Sendable {
    /// The stored answer for `key` (timestamp and signature), or `nil`.
    func webhookReceipt(key: String) async throws -> String?

    /// Stores the `webhook.received` event and the answer that `answer` builds from it, in one
    /// transaction; forgets receipts received before `forgetBefore`. Returns the stored answer:
    /// when a concurrent identical request stored its receipt first, that one.
    func recordWebhook(
        key: String, event: EventDraft, taskID: String?, coreID: String?, receivedAt: Date, forgetBefore: Date,
        answer: @escaping @Sendable (EventRecord) throws -> String
    ) async throws -> (answer: String, event: EventRecord?)
}
