import Foundation
import OrchCore
import OrchModels
import NIOCore
import PostgresNIO

// MARK: Webhook receipts

extension PostgresStore {
    public func webhookReceipt(key: String) async throws -> String? {
        try await row("SELECT answer FROM webhook_receipts WHERE key = \(key)")?.decode("answer")
    }

    /// Copies of one delivery arriving at once are serialised by an advisory lock on their
    /// key: the first applies and records it, the others wait for its commit and then find its
    /// receipt.
    public func recordWebhook(
        key: String, taskID: String?, coreID: String?, change: (@Sendable (TaskRecord) throws -> TaskTransition)?,
        receivedAt: Date, forgetBefore: Date, event: @escaping @Sendable (WebhookTaskOutcome) -> EventDraft,
        answer: @escaping @Sendable (EventRecord, WebhookTaskOutcome) throws -> String
    ) async throws -> WebhookRecording {
        try await transaction { transaction in
            try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresLocks.webhookKey), hashtext(\(key)))")
            if let stored: String = try await transaction.row("SELECT answer FROM webhook_receipts WHERE key = \(key)")?
                .decode("answer")
            {
                return WebhookRecording(answer: stored, isReplay: true, events: [])
            }
            try await transaction.execute("DELETE FROM webhook_receipts WHERE received_at < \(forgetBefore.sqlTime)")
            var outcome = WebhookTaskOutcome.none
            var events: [EventRecord] = []
            var coreID = coreID
            if let taskID, let change {
                if let task = try await Self.fetchTask(taskID, transaction, forUpdate: true) {
                    coreID = task.coreID
                    do {
                        let transition = try change(task)
                        events = try await Self.store([transition], transaction)[0].events
                        outcome = .updated
                    } catch let error as OrchError where error.status == 409 {
                        outcome = .refused(error.message)
                    }
                } else {
                    outcome = .taskNotFound
                }
            }
            let received = try await Self.insertEvents([event(outcome)], taskID: taskID, coreID: coreID, transaction)[0]
            let text = try answer(received, outcome)
            try await transaction.execute(
                "INSERT INTO webhook_receipts (key, answer, received_at) VALUES (\(key), \(text), \(receivedAt.sqlTime))")
            return WebhookRecording(answer: text, isReplay: false, events: events + [received])
        }
    }
}

// MARK: Callbacks

extension PostgresStore {
    /// Due deliveries are taken with `FOR UPDATE SKIP LOCKED` and leased in the same statement,
    /// so two deliverers (or two servers) never take the same one.
    public func takeDueCallbacks(now: Date, leaseUntil: Date, limit: Int) async throws -> [CallbackDelivery] {
        try await rows(
            """
            UPDATE callback_deliveries SET next_attempt_at = \(leaseUntil.sqlTime)
            WHERE id IN (
                SELECT id FROM callback_deliveries WHERE state = 'pending' AND next_attempt_at <= \(now.sqlTime)
                ORDER BY next_attempt_at LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED)
            RETURNING id, task_id, core_id, url, body, attempts, created_at
            """
        ).map { row in
            CallbackDelivery(
                id: try row.decode("id"), taskID: try row.decode("task_id"), coreID: try row.decode("core_id"),
                url: try row.decode("url"), body: Array(buffer: try row.decode("body", as: ByteBuffer.self)), attempts: try row.int("attempts"))
        }.sorted { $0.id < $1.id }
    }

    public func recordCallbackAttempt(_ delivery: CallbackDelivery, outcome: CallbackAttemptOutcome, event: EventDraft)
        async throws -> EventRecord
    {
        let (state, next): (String, Date?) =
            switch outcome {
            case .delivered: ("delivered", nil)
            case .retry(let date): ("pending", date)
            case .abandoned: ("abandoned", nil)
            }
        return try await transaction { transaction in
            try await transaction.execute(
                """
                UPDATE callback_deliveries SET attempts = attempts + 1, state = \(state),
                    next_attempt_at = coalesce(\(next?.sqlTime), next_attempt_at)
                WHERE id = \(delivery.id)
                """)
            return try await Self.insertEvents([event], taskID: delivery.taskID, coreID: delivery.coreID, transaction)[0]
        }
    }

    public func nextCallbackTime() async throws -> Date? {
        try await row("SELECT min(next_attempt_at) AS next FROM callback_deliveries WHERE state = 'pending'")?
            .optionalDate("next")
    }

    /// Queues the callbacks a task change calls for (inside the change's transaction).
    static func queueCallbacks(for task: TaskRecord, events: [EventRecord], _ transaction: PostgresTransaction) async throws {
        guard let url = Callback.url(in: task.metadata) else { return }
        for event in events where Callback.triggers[event.type] != nil {
            try await transaction.execute(
                """
                INSERT INTO callback_deliveries (id, task_id, core_id, url, body, next_attempt_at, state, created_at)
                VALUES (\(Identifier.make("callback")), \(task.id), \(task.coreID), \(url),
                    \(ByteBuffer(bytes: Callback.body(for: event, task: task))), \(event.timestamp.sqlTime), 'pending', \(event.timestamp.sqlTime))
                """)
        }
    }
}

// MARK: API tokens

extension PostgresStore {
    static let apiTokenColumns =
        "id, user_id, name, role, digest, prefix, created_at, expires_at, last_used_at, revoked_at"

    public func createAPIToken(_ token: APITokenRecord) async throws {
        _ = try await rows(
            """
            INSERT INTO api_tokens (id, user_id, name, role, digest, prefix, created_at, expires_at)
            VALUES (\(token.id), \(token.userID), \(token.name), \(token.role.rawValue), \(token.digest), \(token.prefix),
                \(token.createdAt.sqlTime), \(token.expiresAt?.sqlTime))
            """)
    }

    public func apiToken(digest: String) async throws -> APITokenRecord? {
        try await row("SELECT \(unescaped: Self.apiTokenColumns) FROM api_tokens WHERE digest = \(digest)")
            .map(Self.apiTokenRecord)
    }

    public func apiToken(id: String) async throws -> APITokenRecord? {
        try await row("SELECT \(unescaped: Self.apiTokenColumns) FROM api_tokens WHERE id = \(id)").map(Self.apiTokenRecord)
    }

    public func listAPITokens(userID: String?) async throws -> [APITokenRecord] {
        var filter = PostgresFilter()
        filter.condition("revoked_at IS NULL")
        filter.equal("user_id", userID)
        return try await rows(
            filter.query("SELECT \(Self.apiTokenColumns) FROM api_tokens", suffix: " ORDER BY created_at DESC, id")
        ).map(Self.apiTokenRecord)
    }

    public func revokeAPIToken(id: String, at date: Date) async throws -> APITokenRecord? {
        try await transaction { transaction in
            try await transaction.execute(
                "UPDATE api_tokens SET revoked_at = \(date.sqlTime) WHERE id = \(id) AND revoked_at IS NULL")
            return try await transaction.row("SELECT \(unescaped: Self.apiTokenColumns) FROM api_tokens WHERE id = \(id)")
                .map(Self.apiTokenRecord)
        }
    }

    public func touchAPIToken(id: String, at date: Date) async throws {
        _ = try await rows("UPDATE api_tokens SET last_used_at = \(date.sqlTime) WHERE id = \(id)")
    }

    static func apiTokenRecord(_ row: PostgresRandomAccessRow) throws -> APITokenRecord {
        APITokenRecord(
            id: try row.decode("id"), userID: try row.decode("user_id"), name: try row.decode("name"),
            role: Role(rawValue: try row.decode("role")) ?? .viewer, digest: try row.decode("digest"),
            prefix: try row.decode("prefix"), createdAt: try row.date("created_at"),
            expiresAt: try row.optionalDate("expires_at"), lastUsedAt: try row.optionalDate("last_used_at"),
            revokedAt: try row.optionalDate("revoked_at"))
    }
}
