import Foundation
import OrchCore
import OrchModels

/// Persistent state of an ORCH-Next server.
///
/// Every backend (the embedded SQLite store, and PostgreSQL for several nodes) implements this
/// protocol and passes the same conformance suite; callers never see which one they use.
/// Methods that break a uniqueness rule throw ``OrchCore/OrchError`` `RESOURCE_CONFLICT`.
public protocol Store: TaskStore, CoreStore, ScheduleStore, EventStore, LockStore, LoginFailureStore, WebhookStore, CallbackStore, APITokenStore, RetentionStore {
    /// Runs a trivial query, throwing when the database cannot answer.
    func ping() async throws

    /// Closes the store; later calls throw.
    func close() async throws

    // MARK: Settings

    /// The stored value of a server setting, `nil` when unset.
    func setting(_ key: String) async throws -> String?

    /// Stores `value` under `key` unless a value is already there; returns the stored value
    /// (the existing one when there was one). Used for values generated once, like the JWT secret.
    func insertSettingIfAbsent(_ key: String, value: String) async throws -> String

    /// Stores `value` under `key`, replacing any value there.
    func storeSetting(_ key: String, value: String) async throws

    /// How this node hears from the database's other nodes; `nil` when there can be none
    /// (SQLite serves one node).
    var cluster: (any ClusterChannel)? { get }

    // MARK: Users

    /// The number of users, active or not.
    func countUsers() async throws -> Int

    /// Inserts a user. Throws `RESOURCE_CONFLICT` naming `username` or `email` when taken.
    func createUser(_ user: UserRecord) async throws

    /// Inserts `user` only when there are no users at all; returns whether it was inserted.
    func createFirstUser(_ user: UserRecord) async throws -> Bool

    /// The user with this id, or `nil`.
    func user(id: String) async throws -> UserRecord?

    /// The user with this username (compared case-insensitively), or `nil`.
    func user(username: String) async throws -> UserRecord?

    /// A page of users in creation order, and the number matching the filter.
    func listUsers(_ query: UserQuery) async throws -> (total: Int, users: [UserRecord])

    /// Applies `changes` to a user and returns the result, or `nil` when there is no such user.
    /// Throws `RESOURCE_CONFLICT` when the new email is taken.
    func updateUser(id: String, changes: UserChanges) async throws -> UserRecord?

    /// Sets `last_login`.
    func recordLogin(userID: String, at date: Date) async throws
}

/// A user as stored, password hash included.
public struct UserRecord: Sendable, Hashable {
    public var id: String
    public var username: String
    public var email: String
    public var role: Role
    public var passwordHash: String
    public var createdAt: Date
    public var lastLogin: Date?
    public var isActive: Bool
    public var metadata: [String: JSONValue]
    /// The user's session generation: access tokens issued in an earlier one are refused. It
    /// moves on with every change that ends sessions (``UserChanges/endsSessions``).
    public var tokenGeneration: Int

    public init(
        id: String, username: String, email: String, role: Role, passwordHash: String, createdAt: Date,
        lastLogin: Date? = nil, isActive: Bool = true, metadata: [String: JSONValue] = [:], tokenGeneration: Int = 0
    ) {
        self.id = id
        self.username = username
        self.email = email
        self.role = role
        self.passwordHash = passwordHash
        self.createdAt = createdAt
        self.lastLogin = lastLogin
        self.isActive = isActive
        self.metadata = metadata
        self.tokenGeneration = tokenGeneration
    }

    /// The user as the API shows it.
    public var apiValue: User {
        User(
            userID: id, username: username, email: email, role: role, createdAt: createdAt, lastLogin: lastLogin,
            isActive: isActive, metadata: metadata)
    }
}

/// Filters and page of `GET /users`.
public struct UserQuery: Sendable, Hashable {
    public var role: Role?
    public var isActive: Bool?
    public var limit: Int
    public var offset: Int

    public init(role: Role? = nil, isActive: Bool? = nil, limit: Int = 50, offset: Int = 0) {
        self.role = role
        self.isActive = isActive
        self.limit = limit
        self.offset = offset
    }
}

/// The changes of `PATCH /users/{user_id}`; `nil` leaves a field as it is.
///
/// What a change does to the user's credentials is applied in the same transaction:
/// `endsSessions` moves the user's ``UserRecord/tokenGeneration`` on (every access token issued
/// before is refused), and the user's unrevoked API tokens whose role is in
/// `revokedAPITokenRoles` are revoked for good at `now`.
public struct UserChanges: Sendable, Hashable {
    public var email: String?
    public var role: Role?
    public var isActive: Bool?
    public var passwordHash: String?
    public var endsSessions: Bool
    public var revokedAPITokenRoles: Set<Role>
    public var now: Date

    public init(
        email: String? = nil, role: Role? = nil, isActive: Bool? = nil, passwordHash: String? = nil,
        endsSessions: Bool = false, revokedAPITokenRoles: Set<Role> = [], now: Date = Date()
    ) {
        self.email = email
        self.role = role
        self.isActive = isActive
        self.passwordHash = passwordHash
        self.endsSessions = endsSessions
        self.revokedAPITokenRoles = revokedAPITokenRoles
        self.now = now
    }

    /// `user` with these changes made (the token revocations are the store's to write).
    public func applied(to user: UserRecord) -> UserRecord {
        var user = user
        if let email { user.email = email }
        if let role { user.role = role }
        if let isActive { user.isActive = isActive }
        if let passwordHash { user.passwordHash = passwordHash }
        if endsSessions { user.tokenGeneration += 1 }
        return user
    }
}

/// What the other nodes of a database tell this one, and how it tells them (PostgreSQL's
/// LISTEN/NOTIFY). Notices are hints that make a node look sooner; the data is always read from
/// the tables, so a lost notice delays, and never loses, anything.
public protocol ClusterChannel: Sendable {
    /// Tells the database's other nodes that node `node` committed events up to `sequence`.
    func announceEvents(node: String, through sequence: Int64) async throws

    /// Listens until cancelled, on a connection of its own that it checks and reopens after a
    /// failure, handing each notice to `handler` in order.
    func listen(_ handler: @escaping @Sendable (ClusterNotice) async -> Void) async

    /// Competes for leadership of the database's nodes until cancelled: at most one node leads
    /// at a time, and when the leader dies (its connection drops) another takes over within
    /// seconds. `changed` hears each change of whether this node leads.
    func lead(_ changed: @escaping @Sendable (Bool) async -> Void) async
}

/// What ``ClusterChannel/listen(_:)`` hears.
public enum ClusterNotice: Sendable, Equatable {
    /// Node `node` committed events up to `sequence`.
    case events(node: String, through: Int64)
    /// User `id` was changed (its streams may have to end).
    case userChanged(String)
    /// Listening (again): anything may have changed while it was not.
    case connected
    /// The listener lost its connection (or could not open one) and is trying again.
    case disconnected
}
