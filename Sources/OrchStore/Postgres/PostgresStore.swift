import Foundation
import Logging
import NIOSSL
import OrchCore
import OrchModels
import PostgresNIO
import Synchronization

/// The store on a PostgreSQL server, through postgres-nio's connection pool.
///
/// Every operation is one transaction on one pooled connection (`READ COMMITTED`, the server's
/// default). Rows that several callers could take at once (queued tasks, due callbacks, running
/// tasks past their lease) are taken with `FOR UPDATE SKIP LOCKED`, so each goes to exactly one
/// caller. A 2xx means committed: the store never turns `synchronous_commit` off.
///
/// Timestamps are `timestamptz` kept to the millisecond, as the SQLite store keeps them, so both
/// backends hand back the same records. JSON is `jsonb`.
///
/// The pool's `run()` is driven by a task the store owns from ``open(_:poolSize:logger:)`` to
/// ``close()``: the server reads the store while it is being assembled, before its services
/// start, and ``close()`` (the server's last service step) ends the task and waits for it.
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    /// Where the database is: the cluster listener opens a connection of its own there.
    let url: PostgresURL
    /// How long one store operation may take, waiting for a connection included, before it
    /// fails with 503 (a database that went away must not hold requests past their timeout).
    let operationTimeout: Duration
    private let runner: Task<Void, Never>
    private let isClosed = Atomic<Bool>(false)
    /// Set while the database is unreachable (the last operation failed to reach it): then
    /// operations give up after ``outageTimeout`` instead of the full operation timeout, so
    /// requests answer 503 quickly; the first success clears it.
    private let inOutage = Atomic<Bool>(false)
    static let outageTimeout: Duration = .seconds(2)
    /// Users by id, read on every authenticated request. Every user write through this store
    /// invalidates its entry and tells the database's other nodes (``usersChannel``), whose
    /// listeners invalidate theirs; entries live at most ``userLifetime`` in case a notice is
    /// lost, and all are dropped whenever the listener reconnects.
    let users = RecordCache<UserRecord>(lifetime: userLifetime)
    static let userLifetime: Duration = .seconds(5)
    /// Dispatches without an idempotency key, combined while others are being written (see
    /// ``PostgresStore/insertTask(_:idempotency:activeSince:)``).
    let dispatches: Combiner<CombinedDispatch, DispatchOutcome>
    /// Task changes, combined likewise (see ``PostgresStore/modifyTask(id:_:)``).
    let changes: Combiner<CombinedChange, StoredTransition>
    /// Analyses the task tables as they grow (see ``PostgresStatistics``).
    let statistics: PostgresStatistics

    private init(client: PostgresClient, url: PostgresURL, logger: Logger, operationTimeout: Duration, poolSize: Int) {
        self.client = client
        self.url = url
        self.logger = logger
        self.operationTimeout = operationTimeout
        dispatches = Self.combiner(poolSize: poolSize)
        changes = Self.combiner(poolSize: poolSize)
        let statistics = PostgresStatistics()
        self.statistics = statistics
        runner = Task {
            // The pool's `run()` is entered first, in this task itself: operations leasing a
            // connection before it started are answered with a warning line (which a start-up
            // failure must not print beside its one line). The analyses run beside it and end
            // with it.
            async let analyses: Void = statistics.run(client, logger: logger)
            await client.run()
            await analyses
        }
    }

    /// Connects to the database at `url`, checks that it answers, and applies pending
    /// migrations. Throws ``PostgresStartError`` with one line saying what is wrong (a refused
    /// password, an unknown database, an unreachable host, missing rights), never the password.
    ///
    /// - Parameters:
    ///   - poolSize: the most connections the pool opens (`ORCH_DATABASE_POOL`).
    ///   - connectTimeout: how long the first connection may take.
    /// The longest the migrations at start may take.
    static let migrationTimeout: Duration = .seconds(300)

    public static func open(
        _ url: PostgresURL, poolSize: Int = 20, connectTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(10), logger: Logger = Logger(label: "orch.postgres")
    ) async throws -> PostgresStore {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: tls(url.tlsMode))
        configuration.options.maximumConnections = max(1, poolSize)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = connectTimeout
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(30))
        // The hot statements are prepared (``PreparedSQL``) and written so that their generic
        // plan is the good one. Left to choose, PostgreSQL kept planning the batch insert anew
        // at every execution (its generic cost estimate is poor), and planning took a third of
        // the database's CPU. Unnamed statements are planned for their values either way.
        configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
        // One plain connection first: the pool retries a refused login or an unreachable host
        // quietly, while an operator starting the server wants to hear what is wrong at once.
        do {
            try await probe(url, timeout: connectTimeout, logger: logger)
        } catch {
            throw PostgresStartError(error, url: url)
        }
        // The pool logs every failed reconnection attempt at info: during an outage that is a
        // line every few hundred milliseconds, which /health and the 503s already say.
        // Its one warning is for a lease asked before its `run()` began, which the store's
        // start can do (the lease then waits for it): harmless, and it would print a second
        // line beside a refused start's one.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        // The migrations may take long (an index on a big table; a busy server), and the probe
        // has already shown that the database answers: they get minutes, not seconds.
        let store = PostgresStore(
            client: PostgresClient(configuration: configuration, backgroundLogger: poolLogger), url: url, logger: logger,
            operationTimeout: max(connectTimeout + .seconds(1), Self.migrationTimeout), poolSize: poolSize)
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw PostgresStartError(error, url: url)
        }
        return PostgresStore(reopening: store, operationTimeout: operationTimeout)
    }

    /// The same client and runner with the operation timeout of normal work (start-up waits
    /// for the first connection as long as the connect timeout allows).
    /// Runs `operation` under the deadline, keeping track of outages; errors come out mapped.
    private func guarded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            let result = try await withDeadline(inOutage.load(ordering: .relaxed) ? Self.outageTimeout : operationTimeout, operation)
            if inOutage.load(ordering: .relaxed) { inOutage.store(false, ordering: .relaxed) }
            return result
        } catch {
            let mapped = PostgresFault.map(error)
            if let orch = mapped as? OrchError, orch.status == 503 { inOutage.store(true, ordering: .relaxed) }
            throw mapped
        }
    }

    private init(reopening store: PostgresStore, operationTimeout: Duration) {
        client = store.client
        url = store.url
        logger = store.logger
        runner = store.runner
        dispatches = store.dispatches
        changes = store.changes
        statistics = store.statistics
        self.operationTimeout = operationTimeout
    }

    /// Opens and closes one connection to `url`.
    private static func probe(_ url: PostgresURL, timeout: Duration, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try connectionConfiguration(url, timeout: timeout), id: 0, logger: logger)
        try await connection.close()
    }

    /// A single connection's configuration for `url` (the pool has its own).
    static func connectionConfiguration(_ url: PostgresURL, timeout: Duration) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.certificateVerification = .none
        switch url.tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: unverified))
        case .require: tls = .require(try NIOSSLContext(configuration: unverified))
        case .verifyFull: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)
        return configuration
    }

    private static func tls(_ mode: PostgresURL.TLSMode) -> PostgresClient.Configuration.TLS {
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.certificateVerification = .none
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(unverified)
        case .require: return .require(unverified)
        case .verifyFull: return .require(.makeClientConfiguration())
        }
    }

    // MARK: Running statements

    /// Runs `body` in a transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws. Errors come out as ``PostgresFault/map(_:)`` makes them.
    /// A serialization failure or deadlock (which PostgreSQL resolves by failing one side) is
    /// retried a few times.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try checkOpen()
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await guarded {
                    try await self.client.withConnection { connection in
                        let transaction = PostgresTransaction(connection: connection, logger: self.logger)
                        try await transaction.execute("BEGIN")
                        do {
                            let result = try await body(transaction)
                            try await transaction.execute("COMMIT")
                            return result
                        } catch {
                            try? await transaction.execute("ROLLBACK")
                            throw error
                        }
                    }
                }
            } catch let error where attempt < 5 && PostgresFault.isRetryable(error) {
                continue
            }
        }
    }

    /// Runs one statement outside an explicit transaction (it commits by itself) and returns its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await autocommit { transaction in try await transaction.rows(query) }
    }

    /// Runs `body` on one pooled connection without BEGIN: each statement commits by itself.
    func autocommit<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try checkOpen()
        return try await guarded {
            try await self.client.withConnection { connection in
                try await body(PostgresTransaction(connection: connection, logger: self.logger))
            }
        }
    }

    /// The first row of one statement, `nil` when it returns none.
    func row(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await rows(query).first
    }

    /// Runs `body`, failing with ``PostgresFault/timedOut`` when it takes longer than `timeout`.
    ///
    /// The caller is answered at the deadline even if `body` does not end when cancelled (a
    /// connection lease from a pool that was closed meanwhile never does): `body` runs in a task
    /// of its own, cancelled at the deadline and left to end by itself. A task group would wait
    /// for it, and a service sweeping at the moment the store closed then never returned, so
    /// the server's shutdown never finished.
    private func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        let outcome = Outcome<T>()
        let work = Task {
            do {
                outcome.finish(.success(try await body()))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if outcome.finish(.failure(PostgresFault.timedOut)) { work.cancel() }
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            await outcome.value()
        } onCancel: {
            work.cancel()
            outcome.finish(.failure(CancellationError()))
        }.get()
    }

    private func checkOpen() throws {
        if isClosed.load(ordering: .acquiring) { throw OrchError.serviceUnavailable("The database is closed") }
    }

    /// Applies pending migrations (see ``PostgresMigrations``).
    func migrate() async throws {
        try await transaction { transaction in try await PostgresMigrations.apply(transaction) }
    }

    public func ping() async throws {
        _ = try await row("SELECT 1")
    }

    public func close() async throws {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        runner.cancel()
        await runner.value
    }

    // MARK: Settings

    public func setting(_ key: String) async throws -> String? {
        try await row("SELECT value FROM settings WHERE key = \(key)")?.decode("value")
    }

    public func insertSettingIfAbsent(_ key: String, value: String) async throws -> String {
        try await transaction { transaction in
            try await transaction.execute("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO NOTHING")
            return try await transaction.row("SELECT value FROM settings WHERE key = \(key)")?.decode("value") ?? value
        }
    }

    public func storeSetting(_ key: String, value: String) async throws {
        _ = try await rows(
            "INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }

    // MARK: Users

    public func countUsers() async throws -> Int {
        try await row("SELECT count(*) AS n FROM users")?.decode("n", as: Int64.self).asInt ?? 0
    }

    public func createUser(_ user: UserRecord) async throws {
        defer { users.invalidate(user.id) }
        try await transaction { transaction in
            try await Self.insert(user, transaction)
            try await Self.announceUserChange(user.id, transaction)
        }
    }

    /// Tells the other nodes, when `transaction` commits, that user `id` changed.
    static func announceUserChange(_ id: String, _ transaction: PostgresTransaction) async throws {
        _ = try await transaction.rows("SELECT pg_notify(\(usersChannel), \(id))")
    }

    public func createFirstUser(_ user: UserRecord) async throws -> Bool {
        defer { users.invalidate(user.id) }
        return try await transaction { transaction in
            // Two servers starting at once must not both create the first admin.
            try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresLocks.firstUser), 0)")
            guard try await transaction.row("SELECT count(*) AS n FROM users")?.decode("n", as: Int64.self) == 0 else {
                return false
            }
            try await Self.insert(user, transaction)
            return true
        }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await users.fill(id) {
            try await row("SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id)").map(Self.userRecord)
        }
    }

    public func user(username: String) async throws -> UserRecord? {
        try await row("SELECT \(unescaped: Self.userColumns) FROM users WHERE lower(username) = lower(\(username))")
            .map(Self.userRecord)
    }

    public func listUsers(_ query: UserQuery) async throws -> (total: Int, users: [UserRecord]) {
        var filter = PostgresFilter()
        filter.equal("role", query.role?.rawValue)
        filter.equal("is_active", query.isActive)
        let count = filter.query("SELECT count(*) AS n FROM users", suffix: "")
        var page = filter.query("SELECT \(Self.userColumns) FROM users", suffix: " ORDER BY created_at, id")
        page.limit(query.limit, offset: query.offset)
        let users = page
        return try await transaction { transaction in
            let total = try await transaction.row(count)?.decode("n", as: Int64.self) ?? 0
            return (Int(total), try await transaction.rows(users).map(Self.userRecord))
        }
    }

    public func updateUser(id: String, changes: UserChanges) async throws -> UserRecord? {
        defer { users.invalidate(id) }
        return try await transaction { transaction in
            guard
                var user = try await transaction.row(
                    "SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id) FOR UPDATE"
                ).map(Self.userRecord)
            else { return nil }
            user = changes.applied(to: user)
            try await Self.announceUserChange(id, transaction)
            do {
                try await transaction.execute(
                    """
                    UPDATE users SET email = \(user.email), role = \(user.role.rawValue), is_active = \(user.isActive),
                        password_hash = \(user.passwordHash), token_generation = \(Int64(user.tokenGeneration))
                    WHERE id = \(id)
                    """)
            } catch let error where PostgresFault.isUniqueViolation(error) {
                throw OrchError.conflict("Email already exists", details: ["field": "email"])
            }
            for role in changes.revokedAPITokenRoles.sorted(by: { $0.rawValue < $1.rawValue }) {
                try await transaction.execute(
                    """
                    UPDATE api_tokens SET revoked_at = \(changes.now.sqlTime)
                    WHERE user_id = \(id) AND role = \(role.rawValue) AND revoked_at IS NULL
                    """)
            }
            return user
        }
    }

    public func recordLogin(userID: String, at date: Date) async throws {
        defer { users.invalidate(userID) }
        _ = try await rows("UPDATE users SET last_login = \(date.sqlTime) WHERE id = \(userID)")
    }

    // MARK: Rows

    static let userColumns =
        "id, username, email, role, password_hash, created_at, last_login, is_active, metadata::text AS metadata, token_generation"

    static func insert(_ user: UserRecord, _ transaction: PostgresTransaction) async throws {
        do {
            try await transaction.execute(
                """
                INSERT INTO users (id, username, email, role, password_hash, created_at, last_login, is_active, metadata)
                VALUES (\(user.id), \(user.username), \(user.email), \(user.role.rawValue), \(user.passwordHash),
                    \(user.createdAt.sqlTime), \(user.lastLogin?.sqlTime), \(user.isActive),
                    \(JSONValue.jsonText(user.metadata))::jsonb)
                """)
        } catch let error where PostgresFault.isUniqueViolation(error) {
            let field = PostgresFault.constraint(of: error)?.contains("email") == true ? "email" : "username"
            throw OrchError.conflict("A user with this \(field) already exists", details: ["field": .string(field)])
        }
    }

    static func userRecord(_ row: PostgresRandomAccessRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode("id"), username: try row.decode("username"), email: try row.decode("email"),
            role: Role(rawValue: try row.decode("role")) ?? .viewer, passwordHash: try row.decode("password_hash"),
            createdAt: try row.date("created_at"), lastLogin: try row.optionalDate("last_login"),
            isActive: try row.decode("is_active"), metadata: try JSONColumn.decode(try row.decode("metadata")),
            tokenGeneration: Int(try row.decode("token_generation", as: Int64.self)))
    }
}

/// Keys of the transaction-scoped advisory locks the store takes (`pg_advisory_xact_lock(key, id)`),
/// one namespace each.
enum PostgresLocks {
    static let migrations: Int32 = 0x6f72_6300
    static let firstUser: Int32 = 0x6f72_6301
    static let lockResource: Int32 = 0x6f72_6302
    static let webhookKey: Int32 = 0x6f72_6303
    static let idempotencyKey: Int32 = 0x6f72_6304
    /// Held for its session by the node that leads (``ClusterChannel/lead(_:)``).
    static let leader: Int32 = 0x6f72_6305
}

/// Why `orch serve` could not start on a PostgreSQL database: one line for the operator.
public struct PostgresStartError: Error, CustomStringConvertible {
    public var description: String

    init(_ error: any Error, url: PostgresURL) {
        let place = "\(url.host):\(url.port)/\(url.database) as \(url.user)"
        if let psql = error as? PSQLError ?? (error as? PostgresFault).flatMap(\.underlying) {
            description = Self.explain(psql, place: place)
        } else if let server = error as? PostgresServerError {
            description = Self.explain(state: server.state, message: server.message, place: place)
        } else if let orch = PostgresFault.map(error) as? OrchError {
            description = "cannot use PostgreSQL at \(place): \(orch.message)"
        } else {
            description = "cannot use PostgreSQL at \(place): \(error)"
        }
    }

    private static func explain(state: String, message: String, place: String) -> String {
        switch state {
        case "28P01", "28000": return "PostgreSQL refused the login at \(place): \(message)"
        case "3D000": return "PostgreSQL at \(place): \(message)"
        case "42501": return "the PostgreSQL role lacks rights at \(place): \(message)"
        default: return "PostgreSQL at \(place) failed (\(state)): \(message)"
        }
    }

    private static func explain(_ error: PSQLError, place: String) -> String {
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            return explain(state: state, message: error.serverInfo?[.message] ?? "error \(state)", place: place)
        }
        switch error.code {
        case .connectionError, .serverClosedConnection where error.underlying != nil:
            let reason = error.underlying.map { String(describing: $0) } ?? "connection failed"
            let short = ["Connection refused", "connect timeout", "No route to host", "Network is unreachable"]
                .first { reason.localizedCaseInsensitiveContains($0) }
            return "cannot reach PostgreSQL at \(place): \(short?.lowercased() ?? reason)"
        case .sslUnsupported: return "PostgreSQL at \(place) does not offer TLS, which sslmode requires"
        case .authMechanismRequiresPassword: return "PostgreSQL at \(place) asks for a password; the URL has none"
        case .serverClosedConnection:
            return "cannot reach PostgreSQL at \(place): the connection closed before PostgreSQL answered"
        default: return "cannot use PostgreSQL at \(place): \(error.code)"
        }
    }
}

/// How PostgreSQL errors become the store's errors.
struct PostgresFault: Error {
    var underlying: PSQLError?

    /// An operation ran past the store's operation timeout.
    static let timedOut = PostgresFault(underlying: nil)

    /// The store's error for `error`: what closures threw passes through; a database that cannot
    /// be reached, is shutting down or ran out of space becomes 503; text PostgreSQL cannot
    /// store becomes 400.
    static func map(_ error: any Error) -> any Error {
        if error is OrchError || error is CancellationError { return error }
        if let fault = error as? PostgresFault, fault.underlying == nil {
            return OrchError.serviceUnavailable("The database did not answer in time", retryAfter: 1)
        }
        guard let psql = error as? PSQLError else {
            // The pool's own errors (no connection could be made, pool shut down).
            if String(reflecting: type(of: error)).contains("ConnectionPoolError") {
                return OrchError.serviceUnavailable("The database is unavailable", retryAfter: 1)
            }
            return error
        }
        switch psql.code {
        case .server:
            let state = psql.serverInfo?[.sqlState] ?? ""
            if state.hasPrefix("08") || state.hasPrefix("57") || state.hasPrefix("53") || state == "55P03" {
                return OrchError.serviceUnavailable("The database is unavailable (\(state))", retryAfter: 1)
            }
            if state == "22P05" || state == "22021" {
                return OrchError.validation("Text with a NUL character (U+0000) cannot be stored")
            }
            return PostgresServerError(state: state, message: psql.serverInfo?[.message] ?? "")
        case .messageDecodingFailure, .unexpectedBackendMessage, .invalidCommandTag, .tooManyParameters:
            return psql
        default:
            // Closed connections, refused connections, TLS failures, a closed pool.
            return OrchError.serviceUnavailable("The database is unavailable", retryAfter: 1)
        }
    }

    static func sqlState(_ error: any Error) -> String? {
        if let server = error as? PostgresServerError { return server.state }
        guard let psql = error as? PSQLError, psql.code == .server else { return nil }
        return psql.serverInfo?[.sqlState]
    }

    static func isRetryable(_ error: any Error) -> Bool {
        ["40001", "40P01"].contains(sqlState(error))
    }

    static func isUniqueViolation(_ error: any Error) -> Bool {
        sqlState(error) == "23505"
    }

    static func constraint(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.constraintName]
    }
}

/// An error PostgreSQL reported that the store has no meaning for (a bug, or a damaged
/// database): its SQLSTATE and message, for the log.
struct PostgresServerError: Error, CustomStringConvertible {
    var state: String
    var message: String
    var description: String { "PostgreSQL error \(state): \(message)" }
}

/// One connection inside a transaction: statements and their rows.
struct PostgresTransaction: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    func row(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await rows(query).first
    }

    func execute(_ query: PostgresQuery) async throws {
        _ = try await connection.query(query, logger: logger).collect()
    }
}

/// A `WHERE` clause built from the filters a query was given, `column = $n` for each value
/// present, joined with `AND`.
struct PostgresFilter {
    private(set) var bindings = PostgresBindings()
    private var conditions: [String] = []

    mutating func equal<Value: PostgresDynamicTypeEncodable>(_ column: String, _ value: Value?) {
        guard let value else { return }
        bindings.append(value)
        conditions.append("\(column) = $\(bindings.count)")
    }

    /// Adds a condition whose `$?` placeholders take `values` in order.
    mutating func condition(_ sql: String, _ values: [any PostgresDynamicTypeEncodable] = []) {
        var text = sql
        for value in values {
            bindings.append(value)
            guard let mark = text.range(of: "$?") else { break }
            text.replaceSubrange(mark, with: "$\(bindings.count)")
        }
        conditions.append(text)
    }

    var clause: String { conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ") }

    /// `head` with the clause and `suffix`.
    func query(_ head: String, suffix: String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: head + clause + suffix, binds: bindings)
    }
}

extension PostgresQuery {
    /// Appends `LIMIT` and `OFFSET` as bound parameters.
    mutating func limit(_ limit: Int, offset: Int) {
        binds.append(Int64(limit))
        binds.append(Int64(offset))
        sql += " LIMIT $\(binds.count - 1) OFFSET $\(binds.count)"
    }
}

extension PostgresRandomAccessRow {
    func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }

    /// A timestamp, to the millisecond as the store keeps them.
    func date(_ column: String) throws -> Date {
        Date(millis: try decode(column, as: Date.self).millis)
    }

    func optionalDate(_ column: String) throws -> Date? {
        try decode(column, as: Date?.self).map { Date(millis: $0.millis) }
    }

    func int(_ column: String) throws -> Int {
        Int(try decode(column, as: Int64.self))
    }

    func optionalInt(_ column: String) throws -> Int? {
        try decode(column, as: Int64?.self).map(Int.init)
    }
}

extension Int64 {
    var asInt: Int { Int(self) }
}
