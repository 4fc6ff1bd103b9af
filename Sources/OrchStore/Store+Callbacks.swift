import Foundation
import OrchCore

/// A callback waiting to be delivered.
public struct CallbackDelivery: Sendable, Hashable {
    public var id: String
    public var taskID: String
    public var coreID: String
    public var url: String
    public var body: [UInt8]
    /// Attempts made so far.
    public var attempts: Int

    public init(id: String, taskID: String, coreID: String, url: String, body: [UInt8], attempts: Int) {
        self.id = id
        self.taskID = taskID
        self.coreID = coreID
        self.url = url
        self.body = body
        self.attempts = attempts
    }
}

/// What became of a delivery attempt.
public enum CallbackAttemptOutcome: Sendable, Hashable {
    /// Delivered; no more attempts.
    case delivered
    /// Failed; try again at this time.
    case retry(at: Date)
    /// Failed for good (schedule spent, or the receiver answered 410).
    case abandoned
}

/// The durable callback queue. Deliveries are queued in the same transaction as the task change
/// that ends the task (see the task methods), so a committed outcome always gets its callback.
public protocol CallbackStore: Sendable {
    /// Pending deliveries due by `now` (at most `limit`); each is leased until `leaseUntil` so it
    /// is not taken again while its attempt runs. A restart finds them pending again after that.
    func takeDueCallbacks(now: Date, leaseUntil: Date, limit: Int) async throws -> [CallbackDelivery]

    /// Records an attempt's outcome with its `webhook.delivered` / `webhook.failed` event.
    func recordCallbackAttempt(_ delivery: CallbackDelivery, outcome: CallbackAttemptOutcome, event: EventDraft)
        async throws -> EventRecord

    /// When the next pending delivery is due.
    func nextCallbackTime() async throws -> Date?
}
