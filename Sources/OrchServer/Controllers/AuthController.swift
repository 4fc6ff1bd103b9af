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
    /// Slows down, then refuses, repeated failures per username and per address; the failures
    /// are counted in the store, shared by every node.
    let throttle: LoginThrottle

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/auth/login", access: .public, handler: login)
        api.on(.get, "/auth/me", access: .role(.viewer), handler: me)
    }

    /// Exchanges a username and password for an access token. An unknown user, a wrong password
    /// and a deactivated user all get the same 401 after the same bcrypt work.
    ///
    /// Repeated failures are held for a growing delay (from the 3rd); from the 8th for one
    /// username from one client address, that pair is refused with 429 for a lockout that
    /// doubles with each further failure and never exceeds 15 minutes. The username alone and
    /// the address alone are only slowed, so nobody can lock an account's owner out from
    /// elsewhere. A success clears the counts. The counts are kept in the database, so several
    /// nodes give an attacker no more guesses than one.
    @Sendable func login(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: LoginRequest.self)
        // No account has a longer name or password: refused as any failed login, before any work.
        guard body.username.utf8.count <= 1024, body.password.utf8.count <= 1024 else {
            throw OrchError.authenticationRequired("Invalid username or password")
        }
        let keys = LoginThrottle.keys(username: body.username, address: context.clientAddress)
        let names = keys.map(\.name)
        let (storeNow, records) = try await store.loginFailures(keys: names)
        switch throttle.verdict(keys: keys, records: records, now: storeNow.timeIntervalSince1970) {
        case .refuse(let retryAfter):
            let seconds = max(1, Int(retryAfter.rounded(.up)))
            throw OrchError.rateLimited("Too many failed logins; try again later", retryAfter: seconds)
        case .proceed(let delay):
            if delay > 0 { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
        }
        let user = try await store.user(username: body.username)
        let passwordMatches = try await passwords.verify(body.password, against: user?.passwordHash)
        guard var user, passwordMatches, user.isActive else {
            try await store.recordLoginFailure(keys: names, forgetAfter: throttle.forgetAfter)
            throw OrchError.authenticationRequired("Invalid username or password")
        }
        if !records.isEmpty { try await store.clearLoginFailures(keys: names) }
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
