import Foundation
import OrchCore

/// Receipts of incoming webhooks, so that a replayed request gets the first answer and is not
/// processed twice (also across restarts, and also when copies arrive at the same moment).
public protocol WebhookStore: Sendable {
    /// The stored answer for `key` (timestamp and signature), or `nil`.
    func webhookReceipt(key: String) async throws -> String?

    /// Processes one webhook delivery in one transaction: when `key` already has a receipt,
    /// returns its answer and changes nothing; otherwise applies `change` to task `taskID` (when
    /// both are given), stores the `webhook.received` event that `event` makes from the
    /// outcome (on the task's core, else on `coreID`), and the receipt with the answer that
    /// `answer` builds from that event. Forgets receipts received before `forgetBefore`.
    ///
    /// `change` throwing ``OrchCore/OrchError`` with status 409 (the task cannot make the
    /// change) is an outcome, not a failure: nothing of the task changes and the webhook is
    /// still recorded. So is a task that does not exist.
    func recordWebhook(
        key: String, taskID: String?, coreID: String?, change: (@Sendable (TaskRecord) throws -> TaskTransition)?, receivedAt: Date,
        forgetBefore: Date, event: @escaping @Sendable (WebhookTaskOutcome) -> EventDraft,
        answer: @escaping @Sendable (EventRecord, WebhookTaskOutcome) throws -> String
    ) async throws -> WebhookRecording
}

/// What a webhook did to the task it names.
public enum WebhookTaskOutcome: Sendable, Hashable {
    /// The webhook names no task, or its event changes none.
    case none
    /// The task was changed.
    case updated
    /// No such task.
    case taskNotFound
    /// The task could not make the change (for example it had already finished): the reason.
    case refused(String)
}

/// The result of ``WebhookStore/recordWebhook(key:taskID:coreID:change:receivedAt:forgetBefore:event:answer:)``.
public struct WebhookRecording: Sendable {
    /// The answer to give: this delivery's, or the first copy's for a replay.
    public var answer: String
    /// Whether the answer is an earlier copy's (nothing was stored now).
    public var isReplay: Bool
    /// The events stored now, in sequence order: the task's, then `webhook.received`.
    public var events: [EventRecord]

    public init(answer: String, isReplay: Bool, events: [EventRecord]) {
        self.answer = answer
        self.isReplay = isReplay
        self.events = events
    }
}
