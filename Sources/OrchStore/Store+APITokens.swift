import Foundation
import OrchModels

/// Long-lived bearer tokens for machines. Only a SHA-256 digest of each secret is stored.
public protocol APITokenStore: Sendable {
    /// Inserts a token.
    func createAPIToken(_ token: APITokenRecord) async throws

    /// The token whose secret has this digest (hex SHA-256), revoked or not, or `nil`.
    func apiToken(digest: String) async throws -> APITokenRecord?

    /// The token with this id, or `nil`.
    func apiToken(id: String) async throws -> APITokenRecord?

    /// Unrevoked tokens, of one user or (with `nil`) of everyone, newest first.
    func listAPITokens(userID: String?) async throws -> [APITokenRecord]

    /// Marks a token revoked at `date` (once); returns it, or `nil` when there is no such token.
    func revokeAPIToken(id: String, at date: Date) async throws -> APITokenRecord?

    /// Records that the token was used at `date`.
    func touchAPIToken(id: String, at date: Date) async throws
}

/// An API token as stored.
public struct APITokenRecord: Sendable, Hashable {
    /// `tok-<uuid>`.
    public var id: String
    public var userID: String
    public var name: String
    public var role: Role
    /// Hex SHA-256 of the secret.
    public var digest: String
    /// The first characters of the secret, to recognise it in lists.
    public var prefix: String
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: String, userID: String, name: String, role: Role, digest: String, prefix: String, createdAt: Date,
        expiresAt: Date?, lastUsedAt: Date? = nil, revokedAt: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.name = name
        self.role = role
        self.digest = digest
        self.prefix = prefix
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    /// Whether the token may authenticate at `date`: not revoked and not expired.
    public func isUsable(at date: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > date } ?? true)
    }
}

/// Waiting tasks of one core, as the monitor and `/metrics` see them.
public struct CoreQueueSummary: Sendable, Hashable {
    public var coreID: String
    /// Tasks in `queued`.
    public var depth: Int
    /// When the longest-waiting queued task became claimable (created, or ready after a delay).
    public var oldestReadyAt: Date?
    /// Tasks in `scheduled`.
    public var scheduled: Int

    public init(coreID: String, depth: Int, oldestReadyAt: Date?, scheduled: Int = 0) {
        self.coreID = coreID
        self.depth = depth
        self.oldestReadyAt = oldestReadyAt
        self.scheduled = scheduled
    }
}
