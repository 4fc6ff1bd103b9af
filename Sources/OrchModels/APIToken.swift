import Foundation

/// `POST /auth/tokens` request body.
public struct CreateAPITokenRequest: Codable, Sendable, Hashable {
    /// 1-100 characters naming the machine or purpose, e.g. `prometheus`.
    public var name: String
    /// The token's role; default the caller's role. Admins may grant any role; others a role
    /// their own satisfies.
    public var role: Role?
    /// Lifetime in seconds, 60 to 315,360,000 (10 years); absent or `null` for no expiry.
    public var expiresIn: Int?

    public init(name: String, role: Role? = nil, expiresIn: Int? = nil) {
        self.name = name
        self.role = role
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case name, role
        case expiresIn = "expires_in"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        role = try container.decodeIfPresent(Role.self, forKey: .role)
        expiresIn = try container.decodeIntegerIfPresent(forKey: .expiresIn)
    }
}

/// An API token as listed: everything but the secret.
public struct APIToken: Codable, Sendable, Hashable {
    /// `tok-<uuid>`.
    public var tokenID: String
    public var name: String
    public var role: Role
    /// The owner.
    public var userID: String
    /// The secret's first characters, to recognise it.
    public var prefix: String
    public var createdAt: Date
    /// `null` when the token does not expire.
    public var expiresAt: Date?
    /// Last use, to the minute; `null` before the first.
    public var lastUsedAt: Date?

    public init(
        tokenID: String, name: String, role: Role, userID: String, prefix: String, createdAt: Date, expiresAt: Date?,
        lastUsedAt: Date?
    ) {
        self.tokenID = tokenID
        self.name = name
        self.role = role
        self.userID = userID
        self.prefix = prefix
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }

    enum CodingKeys: String, CodingKey {
        case tokenID = "token_id"
        case name, role
        case userID = "user_id"
        case prefix
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case lastUsedAt = "last_used_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokenID, forKey: .tokenID)
        try container.encode(name, forKey: .name)
        try container.encode(role, forKey: .role)
        try container.encode(userID, forKey: .userID)
        try container.encode(prefix, forKey: .prefix)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(lastUsedAt, forKey: .lastUsedAt)
    }
}

/// `POST /auth/tokens` response body: the token and, this once, its secret.
public struct CreatedAPIToken: Codable, Sendable, Hashable {
    /// The bearer token. It is shown only here; the server keeps only a digest.
    public var token: String
    public var apiToken: APIToken

    public init(token: String, apiToken: APIToken) {
        self.token = token
        self.apiToken = apiToken
    }

    public init(from decoder: any Decoder) throws {
        token = try decoder.container(keyedBy: TokenKey.self).decode(String.self, forKey: .token)
        apiToken = try APIToken(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try apiToken.encode(to: encoder)
        var container = encoder.container(keyedBy: TokenKey.self)
        try container.encode(token, forKey: .token)
    }

    enum TokenKey: String, CodingKey {
        case token
    }
}

/// `GET /auth/tokens` response body.
public struct APITokenList: Codable, Sendable, Hashable {
    public var totalTokens: Int
    public var tokens: [APIToken]

    public init(totalTokens: Int, tokens: [APIToken]) {
        self.totalTokens = totalTokens
        self.tokens = tokens
    }

    enum CodingKeys: String, CodingKey {
        case totalTokens = "total_tokens"
        case tokens
    }
}
