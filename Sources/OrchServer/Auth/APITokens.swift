import Crypto
import Foundation
import OrchCore
import OrchModels

/// The format and rules of API tokens.
///
/// A token is ``prefix`` followed by 43 base64url characters (256 random bits). The server stores
/// only its SHA-256 digest: the secret has full entropy, so a fast digest is as safe as a slow
/// password hash and lets every request find its token with one indexed read.
enum APITokens {
    /// Every API token starts with this, which is how it is told from a JWT.
    static let prefix = "orch_"
    /// Characters of the secret kept in the clear to recognise it in lists.
    static let shownCharacters = 12
    /// Longest lifetime a token may be given, in seconds (10 years).
    static let maximumLifetime = 315_360_000

    /// A new secret.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + encoded
    }

    /// Hex SHA-256 of `token`.
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether a user holding `holder` may give (and keep using) a token with `role`: an admin
    /// any role, anyone else a role their own satisfies.
    static func mayGrant(_ role: Role, holder: Role) -> Bool {
        CredentialEffects.mayGrant(role, holder: holder)
    }
}
