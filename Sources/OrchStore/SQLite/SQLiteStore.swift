import Foundation
import GRDB
import OrchCore
import OrchModels
import Synchronization

/// The embedded store: one SQLite file in WAL mode, through GRDB.
///
/// Durability: the database runs with `journal_mode=WAL` and `synchronous=FULL`. With WAL,
/// `synchronous=NORMAL` already survives `kill -9` (a committed transaction is in the WAL in the
/// OS page cache), but loses the last transactions on power loss or a kernel crash. A 2xx from
/// this server promises the write is kept, so the WAL is fsynced at every commit (`FULL`); group
/// commit (``GroupCommitWriter``) shares that fsync among every write committing at once, which
/// is what keeps FULL cheap under load.
///
/// Reads run concurrently on the pool's reader connections and never wait for writes.
public final class SQLiteStore: Store {
    let database: any DatabaseWriter
    let writer: GroupCommitWriter
    /// Users by id: read on every authenticated request, written rarely. This process is the
    /// only writer of the file, and every user write below invalidates its entry.
    let users = RecordCache<UserRecord>()
    /// Set by `close()`; GRDB must not be used after its connections are closed.
    private let isClosed = Atomic<Bool>(false)
    /// Why writes are refused now, if they are (``StorageFault``).
    private let fault = StorageFaultState()
    /// The database file and its WAL as opened, to notice them being deleted or replaced.
    private let files: DatabaseFiles?
    /// The store's clock (``LockStore``): whether a lock's time is up, and the times of lock
    /// records and events. The process's clock: one process owns the file.
    let clock: @Sendable () -> Date
    /// Checkpoints the WAL off the write path (files only; an in-memory database has no log).
    let checkpointer: WALCheckpointer?
    /// Held while a server uses the file (see ``init(location:busyTimeout:serving:clock:)``).
    private let serverLock: ServerFileLock?

    /// Opens (creating when needed) the database at `location` and applies pending migrations.
    ///
    /// - Parameters:
    ///   - location: `.sqliteFile(path:)` or `.sqliteMemory`.
    ///   - busyTimeout: how long a connection waits for another process's lock before failing;
    ///     default 5 seconds.
    ///   - clock: the store's clock (replaceable in tests).
    ///   - serving: take the file's server lock first (``ServerFileLock``): `orch serve` does,
    ///     so that a second server on a file in use stops at start with ``SQLiteInUseError``.
    public init(
        location: DatabaseURL, busyTimeout: TimeInterval = 5, serving: Bool = false,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.clock = clock
        if serving, case .sqliteFile(let path) = location {
            serverLock = try ServerFileLock(databasePath: path)
        } else {
            serverLock = nil
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.maximumReaderCount = 8
        configuration.label = "orch"
        configuration.prepareDatabase { db in
            // Every group-committed write runs in its own savepoint, which makes SQLite copy
            // each page it touches to a statement journal: in memory, not in a temporary file
            // (that file's writes were an eighth of a dispatch's CPU time).
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // A new file returns the pages retention frees (``reclaimSpace()``); on a file that
            // already has tables this changes nothing.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
        }
        switch location {
        case .sqliteFile(let path):
            database = try DatabasePool(path: path, configuration: configuration)
        case .sqliteMemory:
            database = try DatabaseQueue(configuration: configuration)
        case .postgres:
            throw OrchError.serviceUnavailable("SQLiteStore cannot open a PostgreSQL URL")
        }
        // After the pool has put the writer in WAL mode (GRDB then sets NORMAL on that
        // connection); the writer connection lives as long as the pool, so this sticks.
        try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try SQLiteMigrations.migrator.migrate(database)
        if case .sqliteFile(let path) = location {
            files = DatabaseFiles(path: path)
            // The writer no longer checkpoints inside its commits (``WALCheckpointer``).
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
            checkpointer = try WALCheckpointer(path: path)
        } else {
            files = nil
            checkpointer = nil
        }
        let files = self.files
        let fault = self.fault
        let checkpointer = self.checkpointer
        writer = GroupCommitWriter(
            writer: database,
            beforeBatch: {
                // Checked once per group-committed transaction: a commit into a file that is no
                // longer at the configured path would be acknowledged and then lost.
                if let files, !files.areInPlace() {
                    fault.record(.fileReplaced)
                    throw StorageFault.fileReplaced.error
                }
            },
            afterBatch: { checkpointer?.committed() })
    }

    /// Runs `body` in a read transaction.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try checkOpen()
        return try await database.read(body)
    }

    /// Runs `body` in a write transaction shared with concurrent writes (group commit).
    ///
    /// A full disk or an I/O error becomes 503 `SERVICE_UNAVAILABLE` (``StorageFault``) and
    /// makes ``ping()`` fail until its probe write succeeds again; a database file that was
    /// deleted or replaced refuses every write until the server is restarted.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try checkOpen()
        if fault.current == .fileReplaced { throw StorageFault.fileReplaced.error }
        do {
            return try await writer.write(body)
        } catch let error as DatabaseError {
            guard let storageFault = StorageFault(error) else { throw error }
            fault.record(storageFault)
            throw storageFault.error
        }
    }

    private func checkOpen() throws {
        if isClosed.load(ordering: .acquiring) { throw OrchError.serviceUnavailable("The database is closed") }
    }

    /// Throws when the database cannot answer, when its file was deleted or replaced, and
    /// while writes fail for lack of space or an I/O error: then a probe of 64 KiB is written
    /// (and emptied again), and only its success clears the fault. A small write that squeezes
    /// into a half-empty page proves nothing, so ordinary writes never clear it.
    public func ping() async throws {
        if let files, !files.areInPlace() { fault.record(.fileReplaced) }
        switch fault.current {
        case .fileReplaced?: throw StorageFault.fileReplaced.error
        case .full?, .ioError?:
            try await write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO settings (key, value) VALUES ('storage_probe', ?)",
                    arguments: [String(repeating: "p", count: 64 << 10)])
            }
            try await write { db in
                try db.execute(sql: "UPDATE settings SET value = '' WHERE key = 'storage_probe'")
            }
            fault.record(nil)
        case nil: break
        }
        _ = try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM settings") }
    }

    public func close() async throws {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await checkpointer?.stop()
        if let pool = database as? DatabasePool {
            try pool.close()
        } else if let queue = database as? DatabaseQueue {
            try queue.close()
        }
        serverLock?.release()
    }

    /// One node per file (``ServerFileLock``): nobody to hear from.
    public var cluster: (any ClusterChannel)? { nil }

    // MARK: Settings

    public func setting(_ key: String) async throws -> String? {
        try await read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) }
    }

    public func insertSettingIfAbsent(_ key: String, value: String) async throws -> String {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", arguments: [key, value])
            return try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) ?? value
        }
    }

    public func storeSetting(_ key: String, value: String) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }

    // MARK: Users

    public func countUsers() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM users") ?? 0 }
    }

    public func createUser(_ user: UserRecord) async throws {
        try await write { db in try Self.insert(user, db) }
        users.invalidate(user.id)
    }

    public func createFirstUser(_ user: UserRecord) async throws -> Bool {
        defer { users.invalidate(user.id) }
        return try await write { db in
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM users") == 0 else { return false }
            try Self.insert(user, db)
            return true
        }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await users.fill(id) {
            try await read { db in
                try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM users WHERE id = ?"), arguments: [id])
                    .map(Self.userRecord)
            }
        }
    }

    public func user(username: String) async throws -> UserRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]).map(Self.userRecord)
        }
    }

    public func listUsers(_ query: UserQuery) async throws -> (total: Int, users: [UserRecord]) {
        try await read { db in
            var filter = SQLFilter()
            filter.equal("role", query.role?.rawValue)
            filter.equal("is_active", query.isActive)
            let (whereClause, arguments) = (filter.clause, filter.arguments)
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM users \(whereClause)", arguments: arguments) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM users \(whereClause) ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: arguments + [query.limit, query.offset])
            return (total, try rows.map(Self.userRecord))
        }
    }

    public func updateUser(id: String, changes: UserChanges) async throws -> UserRecord? {
        defer { users.invalidate(id) }
        return try await write { db in
            guard var user = try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(Self.userRecord)
            else { return nil }
            user = changes.applied(to: user)
            do {
                try db.execute(
                    sql: """
                        UPDATE users SET email = ?, role = ?, is_active = ?, password_hash = ?, token_generation = ?
                        WHERE id = ?
                        """,
                    arguments: [
                        user.email, user.role.rawValue, user.isActive, user.passwordHash, user.tokenGeneration, id,
                    ])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw OrchError.conflict("Email already exists", details: ["field": "email"])
            }
            for role in changes.revokedAPITokenRoles.sorted(by: { $0.rawValue < $1.rawValue }) {
                try db.execute(
                    sql: "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND role = ? AND revoked_at IS NULL",
                    arguments: [changes.now.millis, id, role.rawValue])
            }
            return user
        }
    }

    public func recordLogin(userID: String, at date: Date) async throws {
        defer { users.invalidate(userID) }
        try await write { db in
            try db.execute(sql: "UPDATE users SET last_login = ? WHERE id = ?", arguments: [date.millis, userID])
        }
    }

    // MARK: Rows

    static func insert(_ user: UserRecord, _ db: Database) throws {
        do {
            try db.execute(
                sql: """
                    INSERT INTO users (id, username, email, role, password_hash, created_at, last_login, is_active, metadata)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    user.id, user.username, user.email, user.role.rawValue, user.passwordHash, user.createdAt.millis,
                    user.lastLogin?.millis, user.isActive, try JSONColumn.encode(user.metadata),
                ])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            let field = (error.message ?? "").contains("users.email") ? "email" : "username"
            throw OrchError.conflict("A user with this \(field) already exists", details: ["field": .string(field)])
        }
    }

    static func userRecord(_ row: Row) throws -> UserRecord {
        UserRecord(
            id: row["id"], username: row["username"], email: row["email"],
            role: Role(rawValue: row["role"]) ?? .viewer, passwordHash: row["password_hash"],
            createdAt: Date(millis: row["created_at"]), lastLogin: (row["last_login"] as Int64?).map(Date.init(millis:)),
            isActive: row["is_active"], metadata: try JSONColumn.decode(row["metadata"]),
            tokenGeneration: row["token_generation"])
    }
}

/// A `WHERE` clause built from the filters a query was given: `column = ?` for each value
/// present, joined with `AND`; empty when none is.
struct SQLFilter {
    private(set) var arguments = StatementArguments()
    private var conditions: [String] = []

    mutating func equal(_ column: String, _ value: (any DatabaseValueConvertible)?) {
        guard let value else { return }
        conditions.append("\(column) = ?")
        arguments += [value]
    }

    var clause: String { conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") }
}
