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
        key: String, event: EventDraft, taskID: String?, coreID: String?, receivedAt: Date, forgetBefore: Date,
        answer: @escaping @Sendable (EventRecord) throws -> String
    ) async throws -> (answer: String, event: EventRecord?) {
        try await write { db in
            if let stored = try String.fetchOne(db, sql: "SELECT answer FROM webhook_receipts WHERE key = ?", arguments: [key]) {
                return (stored, nil)
            }
            try db.execute(sql: "DELETE FROM webhook_receipts WHERE received_at < ?", arguments: [forgetBefore.millis])
            let stored = try Self.insertEvents([event], taskID: taskID, coreID: coreID, db)[0]
            let text = try answer(stored)
            try db.execute(
                sql: "INSERT INTO webhook_receipts (key, answer, received_at) VALUES (?, ?, ?)",
                arguments: [key, text, receivedAt.millis])
            return (text, stored)
        }
    }
}
