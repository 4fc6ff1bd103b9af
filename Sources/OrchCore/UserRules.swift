import OrchModels

/// Validation rules for user accounts.
public enum UserRules {
    /// Usernames are 3-64 characters.
    public static let usernameLength = 3...64
    /// Passwords are 8-72 characters, counted as Unicode code points, as JSON Schema's
    /// `minLength`/`maxLength` count them. bcrypt reads at most 72 bytes, which a password of
    /// 72 non-ASCII characters exceeds; ``PasswordHasher`` hashes such a password's SHA-256
    /// instead, so no character of it is ignored.
    public static let passwordLength = 8...72
    /// Email addresses are at most 254 characters (RFC 5321).
    public static let maxEmailLength = 254

    /// Throws `INVALID_PARAMETER` for `username` unless it is 3-64 characters of `[A-Za-z0-9_.-]`.
    public static func validateUsername(_ username: String) throws(OrchError) {
        try TextRules.check(username, codePoints: usernameLength, field: "username")
        guard username.unicodeScalars.allSatisfy(isUsernameScalar) else {
            throw .invalidParameter("username", "may contain only letters, digits, '_', '.' and '-'")
        }
    }

    /// Throws `INVALID_PARAMETER` for `email` unless it looks like `local@domain.tld`.
    public static func validateEmail(_ email: String) throws(OrchError) {
        guard TextRules.fits(email, codePoints: 0...maxEmailLength), isPlausibleEmail(email) else {
            throw .invalidParameter("email", "must be a valid email address")
        }
    }

    /// Throws `INVALID_PARAMETER` for `password` unless it is 8-72 characters (code points).
    public static func validatePassword(_ password: String) throws(OrchError) {
        try TextRules.check(password, codePoints: passwordLength, field: "password")
    }

    static func isUsernameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", ".", "-": true
        default: false
        }
    }

    /// One `@`, a non-empty local part without spaces, and a dotted domain of letters, digits and
    /// hyphens. Deliberately simple: deliverability is not checked.
    static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last else { return false }
        guard !local.isEmpty, local.count <= 64,
            local.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && $0 != "@" })
        else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { scalar in
                    switch scalar {
                    case "a"..."z", "A"..."Z", "0"..."9", "-": true
                    default: false
                    }
                }
        }
    }
}

/// What a change to a user account does to the credentials already issued to them.
public struct CredentialEffects: Sendable, Hashable {
    /// Every access token (JWT) issued before the change is refused from now on.
    public var endsSessions: Bool
    /// The user's API tokens with these roles are revoked for good.
    public var revokedAPITokenRoles: Set<Role>

    /// The effects of changing a user who holds `role` (active or not) to `newRole` and
    /// `newActive` (`nil`: unchanged), with a new password or not.
    ///
    /// A new password, a deactivation or any role change ends every session: a token is an
    /// assertion about the account as it was when it was issued. Deactivation revokes all the
    /// user's API tokens, and a role change those whose role the new one may not grant, so
    /// that neither reactivation nor re-promotion brings an old credential back.
    public init(role: Role, isActive: Bool, newRole: Role?, newActive: Bool?, newPassword: Bool) {
        let roleChanged = newRole.map { $0 != role } ?? false
        let deactivated = isActive && newActive == false
        endsSessions = newPassword || roleChanged || deactivated
        if deactivated || !(newActive ?? isActive) {
            revokedAPITokenRoles = Set(Role.allCases)
        } else if roleChanged, let newRole {
            revokedAPITokenRoles = Set(Role.allCases.filter { !Self.mayGrant($0, holder: newRole) })
        } else {
            revokedAPITokenRoles = []
        }
    }

    /// Whether a holder of `holder` may give an API token the role `role`: an admin any, anyone
    /// else a role their own satisfies.
    public static func mayGrant(_ role: Role, holder: Role) -> Bool {
        holder == .admin || holder.satisfies(role)
    }
}
