import Logging
import PostgresNIO

/// LISTEN/NOTIFY between the nodes of one database. A notice's payload is tiny (`NODE SEQUENCE`);
/// what it announces is read from the tables.
extension PostgresStore: ClusterChannel {
    public var cluster: (any ClusterChannel)? { self }

    /// The channel of event announcements.
    static let eventsChannel = "orch_events"
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
                    try await connection.listen(on: Self.eventsChannel) { notifications in
                        listening = true
                        await handler(.connected)
                        try await Self.consume(notifications, checking: connection, logger: logger, handler)
                    }
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

    /// Hands `notifications` to `handler` until the connection fails a check or the
    /// sequence ends.
    private static func consume(
        _ notifications: PostgresNotificationSequence, checking connection: PostgresConnection, logger: Logger,
        _ handler: @escaping @Sendable (ClusterNotice) async -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications {
                    if let notice = Self.notice(notification.payload) { await handler(notice) }
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: listenerCheck)
                    try await withThrowingTaskGroup(of: Void.self) { check in
                        check.addTask { _ = try await connection.query("SELECT 1", logger: logger).collect() }
                        check.addTask {
                            try await Task.sleep(for: listenerCheck)
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
