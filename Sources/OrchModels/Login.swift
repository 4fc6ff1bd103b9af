/// `POST /auth/login` request body.
public struct LoginRequest: Codable, Sendable, Hashable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// `POST /auth/login` response body.
public struct LoginResponse: Codable, Sendable, Hashable {
    /// The user as the login response shows it (no timestamps).
    public struct UserSummary: Codable, Sendable, Hashable {
        public var userID: String
        public var username: String
        public var email: String
        public var role: Role

        public init(userID: String, username: String, email: String, role: Role) {
            self.userID = userID
            self.username = username
            self.email = email
            self.role = role
        }

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case username, email, role
        }
    }

    /// An HS256 JWT to send as `Authorization: Bearer <token>`.
    public var accessToken: String
    /// Always `bearer`.
    public var tokenType: String
    /// Lifetime of `accessToken` in seconds.
    public var expiresIn: Int
    public var user: UserSummary

    public init(accessToken: String, tokenType: String = "bearer", expiresIn: Int, user: UserSummary) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case user
    }
}
