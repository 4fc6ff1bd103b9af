import Logging
import PostgresNIO
import Synchronization

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
                for try await notification in changedUsers {
                    users.invalidate(notification.payload)
                    await handler(.userChanged(notification.payload))
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: Self.listenerCheck)
                    _ = try await Self.answer("SELECT true AS answer", on: connection, within: Self.listenerCheck, logger: logger)
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

    /// How often a node that does not lead tries to, and how often the leader checks its
    /// connection (and how long that check may take).
    static let leadershipCheck: Duration = .seconds(1)

    /// Leadership is a session-level advisory lock held on a connection of its own: it is
    /// released the moment that connection closes, also when the node is killed.
    public func lead(_ changed: @escaping @Sendable (Bool) async -> Void) async {
        var leading = false
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: try Self.connectionConfiguration(url, timeout: .seconds(5)), id: 2, logger: logger)
                do {
                    while !Task.isCancelled {
                        let check: PostgresQuery =
                            leading ? "SELECT true AS answer" : "SELECT pg_try_advisory_lock(\(PostgresLocks.leader), 0) AS answer"
                        let held = try await Self.answer(check, on: connection, within: Self.leadershipCheck * 2, logger: logger)
                        if held && !leading {
                            leading = true
                            await changed(true)
                        }
                        try await Task.sleep(for: Self.leadershipCheck)
                    }
                } catch {
                    logger.debug("leadership connection lost", metadata: ["error": "\(error)"])
                }
                try? await connection.close()
            } catch {
                logger.debug("leadership connection cannot connect", metadata: ["error": "\(error)"])
            }
            if leading {
                leading = false
                await changed(false)
            }
            try? await Task.sleep(for: Self.leadershipCheck)
        }
    }

    /// The one boolean `query` answers on `connection`. When no answer comes within `limit`,
    /// or the call is cancelled, the connection is closed and ``PostgresFault/timedOut`` (or
    /// the cancellation) thrown at once: a query on a connection that died without a word may
    /// never return, closed or not, so it is left behind rather than waited for.
    static func answer(_ query: PostgresQuery, on connection: PostgresConnection, within limit: Duration, logger: Logger)
        async throws -> Bool
    {
        let outcome = Outcome<Bool>()
        let work = Task {
            do {
                var answer = false
                for try await value in try await connection.query(query, logger: logger).decode(Bool.self) { answer = value }
                outcome.finish(.success(answer))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        let timer = Task {
            try await Task.sleep(for: limit)
            outcome.finish(.failure(PostgresFault.timedOut))
        }
        defer { timer.cancel() }
        let result = await withTaskCancellationHandler {
            await outcome.value()
        } onCancel: {
            work.cancel()
            outcome.finish(.failure(CancellationError()))
        }
        switch result {
        case .success(let answer): return answer
        case .failure(let error):
            try? await connection.close()
            throw error
        }
    }
}

/// The first of several results to arrive, for whoever waits on it.
final class Outcome<T: Sendable>: Sendable {
    private struct State {
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<Result<T, any Error>, Never>?
    }

    private let state = Mutex(State())

    /// Delivers `result` unless one was delivered already; whether this one was.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (delivered, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Result<T, any Error>, Never>?) in
            guard state.result == nil else { return (false, nil) }
            state.result = result
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume(returning: result)
        return delivered
    }

    /// The first result, once there is one.
    func value() async -> Result<T, any Error> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
