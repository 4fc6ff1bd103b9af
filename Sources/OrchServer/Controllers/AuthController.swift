import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// `POST /auth/login` and `GET /auth/me`.
struct AuthController {
    let store: any Store
    let authenticator: Authenticator
    let passwords: PasswordHasher

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/auth/login", access: .public, handler: login)
        api.on(.get, "/auth/me", access: .role(.viewer), handler: me)
    }

    /// Exchanges a username and password for an access token. An unknown user, a wrong password
    /// and a deactivated user all get the same 401 after the same bcrypt work.
    @Sendable func login(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: LoginRequest.self)
        let user = try await store.user(username: body.username)
        let passwordMatches = try await passwords.verify(body.password, against: user?.passwordHash)
        guard var user, passwordMatches, user.isActive else {
            throw OrchError.authenticationRequired("Invalid username or password")
        }
        let now = Date()
        try await store.recordLogin(userID: user.id, at: now)
        user.lastLogin = now
        let token = try await authenticator.issueToken(for: user, now: now)
        context.logger.info("login", metadata: ["user_id": "\(user.id)"])
        return try .json(
            LoginResponse(
                accessToken: token, expiresIn: authenticator.tokenTTL,
                user: .init(userID: user.id, username: user.username, email: user.email, role: user.role)))
    }

    /// The caller's own account.
    @Sendable func me(_ request: Request, context: OrchRequestContext) async throws -> Response {
        guard let identity = context.identity, let user = try await store.user(id: identity.userID) else {
            throw OrchError.invalidToken()
        }
        return try .json(user.apiValue)
    }
}
