import Foundation
import JWTKit
import OrchModels

/// The claims of an ORCH-Next access token.
struct AccessTokenClaims: JWTPayload {
    /// The user id.
    var sub: SubjectClaim
    /// The user's role when the token was issued (the current role is re-read on every request).
    var role: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim
    /// A unique token id.
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// A presented bearer token once verified (a JWT's signature and expiry, or an API token found
/// unrevoked and unexpired), kept for the rest of the request.
struct VerifiedToken: Sendable {
    let token: String
    let userID: String
    /// The role the token carries: a JWT's role at issue, or an API token's role.
    let role: Role
    let expiresAt: Date?
    /// The API token's id; `nil` for a JWT.
    let apiTokenID: String?
}
