import Foundation
import GRDB
import OrchCore

extension SQLiteStore {
    public func webhookReceipt(key: String) async throws -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT answer FROM webhook_receipts WHERE key = ?", arguments: [key])
        }
    }

    public func recordWebhook(
        key: String, taskID: String?, coreID: String?, change: (@Sendable (TaskRecord) throws -> TaskTransition)?, receivedAt: Date,
        forgetBefore: Date, event: @escaping @Sendable (WebhookTaskOutcome) -> EventDraft,
        answer: @escaping @Sendable (EventRecord, WebhookTaskOutcome) throws -> String
    ) async throws -> WebhookRecording {
        // Writes are serialised (one writer, group commit), so the receipt check and the receipt
        // insert below cannot interleave with another copy's.
        try await write { db in
            if let stored = try String.fetchOne(db, sql: "SELECT answer FROM webhook_receipts WHERE key = ?", arguments: [key]) {
                return WebhookRecording(answer: stored, isReplay: true, events: [])
            }
            try db.execute(sql: "DELETE FROM webhook_receipts WHERE received_at < ?", arguments: [forgetBefore.millis])
            var outcome = WebhookTaskOutcome.none
            var events: [EventRecord] = []
            var coreID = coreID
            if let taskID, let change {
                if let task = try Self.fetchTask(db, id: taskID) {
                    coreID = task.coreID
                    do {
                        let stored = try Self.store(try change(task), db)
                        events = stored.events
                        outcome = .updated
                    } catch let error as OrchError where error.status == 409 {
                        outcome = .refused(error.message)
                    }
                } else {
                    outcome = .taskNotFound
                }
            }
            let received = try Self.insertEvents([event(outcome)], taskID: taskID, coreID: coreID, db)[0]
            let text = try answer(received, outcome)
            try db.execute(
                sql: "INSERT INTO webhook_receipts (key, answer, received_at) VALUES (?, ?, ?)",
                arguments: [key, text, receivedAt.millis])
            return WebhookRecording(answer: text, isReplay: false, events: events + [received])
        }
    }
}
