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
    /// The user's session generation when the token was issued (``UserRecord/tokenGeneration``);
    /// absent in tokens from before generations existed, which count as generation 0.
    var gen: Int?
    /// Not before; we never issue it, but a token that carries one is held to it.
    var nbf: NotBeforeClaim?

    /// Seconds a token's `iat` and `nbf` may lie in the future (clock skew between issuers).
    static let leeway: TimeInterval = 60

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        let now = Date()
        if iat.value > now.addingTimeInterval(Self.leeway) {
            throw JWTError.claimVerificationFailure(failedClaim: iat, reason: "issued in the future")
        }
        if let nbf, nbf.value > now.addingTimeInterval(Self.leeway) {
            throw JWTError.claimVerificationFailure(failedClaim: nbf, reason: "not valid yet")
        }
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
    /// A JWT's session generation (0 when it carries none); `nil` for an API token.
    var generation: Int? = nil
}
