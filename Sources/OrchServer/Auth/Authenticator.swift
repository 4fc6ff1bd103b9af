import Foundation
import Hummingbird
import JWTKit
import OrchCore
import OrchModels
import OrchStore

/// Issues and verifies access tokens, and decides who a request comes from.
///
/// Tokens are HS256 JWTs with `sub`, `role`, `iat`, `exp`, `iss` and `jti`. The algorithm is
/// pinned: the header must say `HS256` (so `none` and every other algorithm are refused before
/// any signature check), the issuer must be ours and the token unexpired. The user is then read
/// from the store on every request, so deactivating a user or changing their role takes effect
/// on their next request.
public final class Authenticator: Sendable {
    /// The `iss` claim of every token.
    public static let issuer = "orch-next"

    let keys: JWTKeyCollection
    let store: any Store
    /// Access token lifetime in seconds.
    let tokenTTL: Int

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
            jti: .init(value: Identifier.make("jwt")))
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
        let claims: AccessTokenClaims
        if let verified, verified.token == token {
            claims = verified.claims
        } else {
            claims = try await verify(token)
        }
        return try await identity(claims, minimum: minimum)
    }

    /// The token a request presents: `Authorization: Bearer`, else (with `acceptsQueryToken`)
    /// the `access_token` query parameter.
    static func presentedToken(_ request: Request, acceptsQueryToken: Bool) -> String? {
        if let token = bearerToken(request.headers[.authorization]) { return token }
        guard acceptsQueryToken, let query = request.uri.queryParameters["access_token"], !query.isEmpty else { return nil }
        return String(query)
    }

    /// The user behind verified `claims`, who must be active and hold at least `minimum`.
    func identity(_ claims: AccessTokenClaims, minimum: Role) async throws -> Identity {
        guard let user = try await store.user(id: claims.sub.value), user.isActive else {
            throw OrchError.invalidToken("The token's user does not exist or is deactivated")
        }
        guard user.role.satisfies(minimum) else {
            throw OrchError.insufficientPermissions(required: minimum, actual: user.role)
        }
        return Identity(userID: user.id, username: user.username, role: user.role, tokenExpiresAt: claims.exp.value)
    }

    /// The verified claims of `token`, or 401 `INVALID_TOKEN`.
    func verify(_ token: String) async throws -> AccessTokenClaims {
        guard Self.headerAlgorithm(of: token) == "HS256" else {
            throw OrchError.invalidToken("Token must be signed with HS256")
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw OrchError.invalidToken("Token has expired")
        } catch {
            throw OrchError.invalidToken()
        }
        guard claims.iss.value == Self.issuer else { throw OrchError.invalidToken("Token has an unknown issuer") }
        return claims
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// The `alg` of a JWT's header, read without trusting anything else in the token.
    static func headerAlgorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Data(base64URLEncoded: String(header)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["alg"] as? String
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
