import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// API tokens for machines: `POST /auth/tokens`, `GET /auth/tokens`,
/// `DELETE /auth/tokens/{token_id}`. Any signed-in user (viewer and up) manages their own
/// tokens; an admin sees and revokes everyone's.
///
/// Creating a token needs a login token: an API token cannot mint further tokens, so a leaked
/// one cannot be used to make itself permanent. Revocation takes effect on the next request
/// (the token is looked up on every request) and closes the token's open event streams.
struct APITokenController {
    let store: any Store
    let bus: EventBus

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/auth/tokens", access: .role(.viewer), handler: create)
        api.on(.get, "/auth/tokens", access: .role(.viewer), handler: list)
        api.on(.delete, "/auth/tokens/{token_id}", access: .role(.viewer), handler: revoke)
    }

    @Sendable func create(_ request: Request, context: OrchRequestContext) async throws -> Response {
        guard let identity = context.identity else { throw OrchError.invalidToken() }
        guard identity.apiTokenID == nil else {
            throw OrchError.forbidden("API tokens cannot create tokens; sign in with POST /auth/login")
        }
        let body = try await request.decodeJSON(as: CreateAPITokenRequest.self)
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        try TextRules.check(name, codePoints: 1...100, field: "name")
        let role = body.role ?? identity.role
        guard APITokens.mayGrant(role, holder: identity.role) else {
            throw OrchError.forbidden(
                "A \(identity.role.rawValue) cannot create a token with the \(role.rawValue) role",
                details: ["role": .string(identity.role.rawValue), "requested_role": .string(role.rawValue)])
        }
        if let seconds = body.expiresIn, !(60...APITokens.maximumLifetime).contains(seconds) {
            throw OrchError.invalidParameter("expires_in", "must be 60 to \(APITokens.maximumLifetime) seconds")
        }
        let secret = APITokens.generate()
        let now = Date()
        let record = APITokenRecord(
            id: Identifier.make("tok"), userID: identity.userID, name: name, role: role,
            digest: APITokens.digest(secret), prefix: String(secret.prefix(APITokens.shownCharacters)), createdAt: now,
            expiresAt: body.expiresIn.map { now.addingTimeInterval(TimeInterval($0)) })
        try await store.createAPIToken(record)
        context.logger.info(
            "API token created", metadata: ["token_id": "\(record.id)", "role": "\(role.rawValue)"])
        return try .json(CreatedAPIToken(token: secret, apiToken: record.apiValue), status: .created)
    }

    /// The caller's tokens; an admin's list holds everyone's (`?user_id=` narrows it).
    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        guard let identity = context.identity else { throw OrchError.invalidToken() }
        let owner: String? =
            identity.role == .admin ? QueryParameters(request).string("user_id") : identity.userID
        let tokens = try await store.listAPITokens(userID: owner).map(\.apiValue)
        return try .json(APITokenList(totalTokens: tokens.count, tokens: tokens))
    }

    @Sendable func revoke(_ request: Request, context: OrchRequestContext) async throws -> Response {
        guard let identity = context.identity else { throw OrchError.invalidToken() }
        let id = try context.pathParameter("token_id")
        // Someone else's token is "not found" to a non-admin, so ids cannot be probed.
        guard let token = try await store.apiToken(id: id), token.revokedAt == nil,
            identity.role == .admin || token.userID == identity.userID
        else {
            throw OrchError.notFound("API token \(id) not found", details: ["token_id": .string(id)])
        }
        _ = try await store.revokeAPIToken(id: id, at: Date())
        bus.closeSubscriptions(.revoked) { $0.apiTokenID == id }
        context.logger.info("API token revoked", metadata: ["token_id": "\(id)"])
        return Response(status: .noContent)
    }
}

extension APITokenRecord {
    /// The token as listed, without its digest.
    var apiValue: APIToken {
        APIToken(
            tokenID: id, name: name, role: role, userID: userID, prefix: prefix, createdAt: createdAt,
            expiresAt: expiresAt, lastUsedAt: lastUsedAt)
    }
}
