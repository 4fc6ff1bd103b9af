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
    func authenticate(_ request: Request, minimum: Role, acceptsQueryToken: Bool = false) async throws -> Identity {
        var token = Self.bearerToken(request.headers[.authorization])
        if token == nil, acceptsQueryToken, let query = request.uri.queryParameters["access_token"], !query.isEmpty {
            token = String(query)
        }
        guard let token else { throw OrchError.authenticationRequired() }
        return try await authenticate(token: token, minimum: minimum)
    }

    /// As ``authenticate(_:minimum:)`` for a token taken from elsewhere.
    func authenticate(token: String, minimum: Role) async throws -> Identity {
        let claims = try await verify(token)
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
