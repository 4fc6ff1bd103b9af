import Foundation
import Hummingbird
import JWTKit
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// Issues and verifies access tokens, and decides who a request comes from.
///
/// Two kinds of bearer token are accepted:
/// - Access tokens from `POST /auth/login`: HS256 JWTs with `sub`, `role`, `iat`, `exp`, `iss`
///   and `jti`. The algorithm is pinned: the header must say `HS256` (so `none` and every other
///   algorithm are refused before any signature check), the issuer must be ours and the token
///   unexpired. The caller's role is the user's current role.
/// - API tokens from `POST /auth/tokens` (``APITokens/prefix`` then 43 random characters):
///   looked up by their SHA-256 digest, refused once revoked or expired. The caller's role is
///   the token's role, as long as the owner still holds it.
///
/// The user is read from the store on every request (the store keeps users in memory and
/// forgets one on every write to it), so deactivating a user or changing their role takes
/// effect on their next request.
///
/// A JWT whose signature and claims verified is remembered until it expires, so a client
/// reusing its token (every client does) pays for the HMAC and the claim decoding once.
/// Nothing about a JWT can change before it expires; what can (the user) is read each time.
public final class Authenticator: Sendable {
    /// The `iss` claim of every token.
    public static let issuer = "orch-next"

    let keys: JWTKeyCollection
    let store: any Store
    /// Access token lifetime in seconds.
    let tokenTTL: Int
    /// JWTs that verified, by token; bounded (emptied when full).
    private let verifiedJWTs = Mutex<[String: VerifiedToken]>([:])
    private static let verifiedJWTCapacity = 10_000

    init(secret: String, tokenTTL: Int, store: any Store) async {
        self.keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.tokenTTL = tokenTTL
        self.store = store
    }

    /// A signed access token for `user`, valid for `tokenTTL` seconds.
    func issueToken(for user: UserRecord, now: Date = Date()) async throws -> String {
        // NumericDate in whole seconds: some JWT libraries refuse fractional values.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = AccessTokenClaims(
            sub: .init(value: user.id), role: user.role.rawValue, iat: .init(value: now),
            exp: .init(value: now.addingTimeInterval(TimeInterval(tokenTTL))), iss: .init(value: Self.issuer),
            jti: .init(value: Identifier.make("jwt")), gen: user.tokenGeneration)
        return try await keys.sign(claims)
    }

    /// The caller of `request`, who must hold at least `minimum`.
    ///
    /// Throws 401 `AUTHENTICATION_REQUIRED` without a bearer token, 401 `INVALID_TOKEN` for a
    /// token that does not verify or whose user is gone or inactive, and 403
    /// `INSUFFICIENT_PERMISSIONS` when the user's role is too low.
    ///
    /// With `acceptsQueryToken` (the SSE route only: `EventSource` cannot send headers) an
    /// `access_token` query parameter is used when there is no `Authorization` header.
    ///
    /// `verified` is a token this request's rate limiting already verified; it is not checked
    /// twice.
    func authenticate(
        _ request: Request, minimum: Role, acceptsQueryToken: Bool = false, verified: VerifiedToken? = nil
    ) async throws -> Identity {
        guard let token = Self.presentedToken(request, acceptsQueryToken: acceptsQueryToken) else {
            throw OrchError.authenticationRequired()
        }
        let credential: VerifiedToken
        if let verified, verified.token == token {
            credential = verified
        } else {
            credential = try await verify(token)
        }
        return try await identity(credential, minimum: minimum)
    }

    /// The token a request presents: `Authorization: Bearer`, else (with `acceptsQueryToken`)
    /// the `access_token` query parameter.
    static func presentedToken(_ request: Request, acceptsQueryToken: Bool) -> String? {
        if let token = bearerToken(request.headers[.authorization]) { return token }
        guard acceptsQueryToken, let query = request.uri.queryParameters["access_token"], !query.isEmpty else { return nil }
        return String(query)
    }

    /// The user behind a verified token, who must be active and hold at least `minimum`.
    func identity(_ credential: VerifiedToken, minimum: Role) async throws -> Identity {
        guard let user = try await store.user(id: credential.userID), user.isActive else {
            throw OrchError.invalidToken("The token's user does not exist or is deactivated")
        }
        if let generation = credential.generation, generation != user.tokenGeneration {
            throw OrchError.invalidToken("The token was issued before the account's password, role or status changed")
        }
        var role = user.role
        if credential.apiTokenID != nil {
            guard APITokens.mayGrant(credential.role, holder: user.role) else {
                throw OrchError.invalidToken("The API token's role is above its owner's current role")
            }
            role = credential.role
        }
        guard role.satisfies(minimum) else {
            throw OrchError.insufficientPermissions(required: minimum, actual: role)
        }
        return Identity(
            userID: user.id, username: user.username, role: role, tokenExpiresAt: credential.expiresAt,
            apiTokenID: credential.apiTokenID, sessionGeneration: credential.generation)
    }

    /// `token` verified (a JWT or an API token), or 401 `INVALID_TOKEN`.
    func verify(_ token: String, now: Date = Date()) async throws -> VerifiedToken {
        if token.hasPrefix(APITokens.prefix) { return try await verifyAPIToken(token) }
        if let known = verifiedJWTs.withLock({ $0[token] }), let expiresAt = known.expiresAt, expiresAt > now {
            return known
        }
        let claims = try await verifyJWT(token)
        let verified = VerifiedToken(
            token: token, userID: claims.sub.value, role: Role(rawValue: claims.role) ?? .viewer,
            expiresAt: claims.exp.value, apiTokenID: nil, generation: claims.gen ?? 0)
        verifiedJWTs.withLock { known in
            if known.count >= Self.verifiedJWTCapacity { known.removeAll(keepingCapacity: true) }
            known[token] = verified
        }
        return verified
    }

    /// An API token found by its digest, unrevoked and unexpired. Its `last_used_at` is
    /// written at most once a minute.
    func verifyAPIToken(_ token: String, now: Date = Date()) async throws -> VerifiedToken {
        guard let record = try await store.apiToken(digest: APITokens.digest(token)) else {
            throw OrchError.invalidToken()
        }
        guard record.isUsable(at: now) else {
            throw OrchError.invalidToken(record.revokedAt != nil ? "API token was revoked" : "API token has expired")
        }
        if record.lastUsedAt.map({ now.timeIntervalSince($0) >= 60 }) ?? true {
            try await store.touchAPIToken(id: record.id, at: now)
        }
        return VerifiedToken(
            token: token, userID: record.userID, role: record.role, expiresAt: record.expiresAt, apiTokenID: record.id)
    }

    /// The verified claims of JWT `token`, or 401 `INVALID_TOKEN`.
    func verifyJWT(_ token: String) async throws -> AccessTokenClaims {
        guard let header = Self.header(of: token), header["alg"] as? String == "HS256" else {
            throw OrchError.invalidToken("Token must be signed with HS256")
        }
        // RFC 7515 4.1.11: extensions listed in `crit` must be understood; we understand none.
        guard header["crit"] == nil else {
            throw OrchError.invalidToken("Token has critical header extensions this server does not understand")
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            if error.failedClaim is ExpirationClaim { throw OrchError.invalidToken("Token has expired") }
            throw OrchError.invalidToken("Token is not valid yet (iat or nbf in the future)")
        } catch {
            throw OrchError.invalidToken()
        }
        guard claims.iss.value == Self.issuer else { throw OrchError.invalidToken("Token has an unknown issuer") }
        return claims
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
    static func bearerToken(_ header: String?) -> String? {
        // Byte-level on purpose: this runs on every request, and Foundation's trimming and
        // lowercasing were a visible share of a dispatch's CPU time.
        guard let header else { return nil }
        let bytes = header.utf8
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let schemeEnd = bytes.firstIndex(where: isBlank) else { return nil }
        guard bytes[bytes.startIndex..<schemeEnd].elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }) else { return nil }
        guard let start = bytes[schemeEnd...].firstIndex(where: { !isBlank($0) }) else { return nil }
        let end = bytes[start...].lastIndex(where: { !isBlank($0) })!
        return String(header[start...end])
    }

    /// A JWT's header, read without trusting anything else in the token.
    static func header(of token: String) -> [String: Any]? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Data(base64URLEncoded: String(header))
        else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

}

extension Data {
    /// Decodes unpadded base64url.
    init?(base64URLEncoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
