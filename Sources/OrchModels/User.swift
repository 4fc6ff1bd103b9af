import Foundation

/// A user account as the API shows it. Password hashes never leave the server.
public struct User: Codable, Sendable, Hashable {
    /// `user-<uuid>`.
    public var userID: String
    public var username: String
    public var email: String
    public var role: Role
    public var createdAt: Date
    /// The time of the last successful login; `null` before the first.
    public var lastLogin: Date?
    /// An inactive user cannot log in and their tokens are refused.
    public var isActive: Bool
    /// Free-form data given at creation, for example a department.
    public var metadata: [String: JSONValue]

    public init(
        userID: String, username: String, email: String, role: Role, createdAt: Date, lastLogin: Date?,
        isActive: Bool, metadata: [String: JSONValue]
    ) {
        self.userID = userID
        self.username = username
        self.email = email
        self.role = role
        self.createdAt = createdAt
        self.lastLogin = lastLogin
        self.isActive = isActive
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id"
        case username, email, role
        case createdAt = "created_at"
        case lastLogin = "last_login"
        case isActive = "is_active"
        case metadata
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.userID = try container.decode(String.self, forKey: .userID)
        self.username = try container.decode(String.self, forKey: .username)
        self.email = try container.decode(String.self, forKey: .email)
        self.role = try container.decode(Role.self, forKey: .role)
        self.createdAt = try container.decode(Date.self, forKey: .createdAt)
        self.lastLogin = try container.decodeIfPresent(Date.self, forKey: .lastLogin)
        self.isActive = try container.decode(Bool.self, forKey: .isActive)
        self.metadata = try container.decodeIfPresent([String: JSONValue].self, forKey: .metadata) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(userID, forKey: .userID)
        try container.encode(username, forKey: .username)
        try container.encode(email, forKey: .email)
        try container.encode(role, forKey: .role)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(lastLogin, forKey: .lastLogin)
        try container.encode(isActive, forKey: .isActive)
        try container.encode(metadata, forKey: .metadata)
    }
}

/// `POST /users` request body.
public struct CreateUserRequest: Codable, Sendable, Hashable {
    /// 3-64 characters of `[A-Za-z0-9_.-]`, unique.
    public var username: String
    /// A plausible address, unique.
    public var email: String
    /// 8 to 72 characters (Unicode code points).
    public var password: String
    public var role: Role
    public var metadata: [String: JSONValue]?

    public init(username: String, email: String, password: String, role: Role, metadata: [String: JSONValue]? = nil) {
        self.username = username
        self.email = email
        self.password = password
        self.role = role
        self.metadata = metadata
    }
}

/// `PATCH /users/{user_id}` request body: every field is optional and only given fields change.
public struct UpdateUserRequest: Codable, Sendable, Hashable {
    public var email: String?
    public var role: Role?
    public var isActive: Bool?
    public var password: String?

    public init(email: String? = nil, role: Role? = nil, isActive: Bool? = nil, password: String? = nil) {
        self.email = email
        self.role = role
        self.isActive = isActive
        self.password = password
    }

    enum CodingKeys: String, CodingKey {
        case email, role
        case isActive = "is_active"
        case password
    }
}

/// `GET /users` response body.
public struct UserList: Codable, Sendable, Hashable {
    public var totalUsers: Int
    public var users: [User]
    public var pagination: Pagination

    public init(totalUsers: Int, users: [User], pagination: Pagination) {
        self.totalUsers = totalUsers
        self.users = users
        self.pagination = pagination
    }

    enum CodingKeys: String, CodingKey {
        case totalUsers = "total_users"
        case users, pagination
    }
}
