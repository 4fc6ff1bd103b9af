import Logging
import PostgresNIO

/// LISTEN/NOTIFY between the nodes of one database. A notice's payload is tiny (`NODE SEQUENCE`);
/// what it announces is read from the tables.
extension PostgresStore: ClusterChannel {
    public var cluster: (any ClusterChannel)? { self }

    /// The channel of event announcements.
    static let eventsChannel = "orch_events"
    /// The channel of changed users (payload: the user's id), for the user cache.
    static let usersChannel = "orch_users"
    /// How often the listening connection is checked with a query (a connection can die
    /// without a word: a NAT, a failover), and how long the check may take.
    static let listenerCheck: Duration = .seconds(5)

    public func announceEvents(node: String, through sequence: Int64) async throws {
        _ = try await rows("SELECT pg_notify(\(Self.eventsChannel), \("\(node) \(sequence)"))")
    }

    public func listen(_ handler: @escaping @Sendable (ClusterNotice) async -> Void) async {
        var listening: Bool?
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: try Self.connectionConfiguration(url, timeout: .seconds(5)), id: 1, logger: logger)
                do {
                    let events = try await connection.listen(Self.eventsChannel)
                    let changedUsers = try await connection.listen(Self.usersChannel)
                    // Changes made while nobody listened are unknown: read every user again.
                    users.invalidateAll()
                    listening = true
                    await handler(.connected)
                    try await consume(events, changedUsers, checking: connection, handler)
                } catch {
                    logger.debug("cluster listener lost its connection", metadata: ["error": "\(error)"])
                }
                try? await connection.close()
            } catch {
                logger.debug("cluster listener cannot connect", metadata: ["error": "\(error)"])
            }
            if listening != false {
                listening = false
                await handler(.disconnected)
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Hands event notices to `handler` and drops changed users from the cache until the
    /// connection fails a check or a sequence ends.
    private func consume(
        _ events: PostgresNotificationSequence, _ changedUsers: PostgresNotificationSequence,
        checking connection: PostgresConnection, _ handler: @escaping @Sendable (ClusterNotice) async -> Void
    ) async throws {
        let (users, logger) = (self.users, self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in events {
                    if let notice = Self.notice(notification.payload) { await handler(notice) }
                }
            }
            group.addTask {
                for try await notification in changedUsers { users.invalidate(notification.payload) }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: Self.listenerCheck)
                    try await withThrowingTaskGroup(of: Void.self) { check in
                        check.addTask { _ = try await connection.query("SELECT 1", logger: logger).collect() }
                        check.addTask {
                            try await Task.sleep(for: Self.listenerCheck)
                            throw PostgresFault.timedOut
                        }
                        defer { check.cancelAll() }
                        try await check.next()
                    }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// The notice a payload `NODE SEQUENCE` carries; `nil` for anything else.
    static func notice(_ payload: String) -> ClusterNotice? {
        let parts = payload.split(separator: " ")
        guard parts.count == 2, let sequence = Int64(parts[1]) else { return nil }
        return .events(node: String(parts[0]), through: sequence)
    }
}
