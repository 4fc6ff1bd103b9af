import OrchModels

/// Validation rules for user accounts.
public enum UserRules {
    /// Usernames are 3-64 characters.
    public static let usernameLength = 3...64
    /// Passwords are 8-72 bytes in UTF-8; bcrypt ignores anything after 72 bytes, so longer ones
    /// are refused rather than silently truncated.
    public static let passwordBytes = 8...72
    /// Email addresses are at most 254 characters (RFC 5321).
    public static let maxEmailLength = 254

    /// Throws `INVALID_PARAMETER` for `username` unless it is 3-64 characters of `[A-Za-z0-9_.-]`.
    public static func validateUsername(_ username: String) throws(OrchError) {
        guard usernameLength.contains(username.count) else {
            throw .invalidParameter("username", "must be 3 to 64 characters")
        }
        guard username.unicodeScalars.allSatisfy(isUsernameScalar) else {
            throw .invalidParameter("username", "may contain only letters, digits, '_', '.' and '-'")
        }
    }

    /// Throws `INVALID_PARAMETER` for `email` unless it looks like `local@domain.tld`.
    public static func validateEmail(_ email: String) throws(OrchError) {
        guard email.count <= maxEmailLength, isPlausibleEmail(email) else {
            throw .invalidParameter("email", "must be a valid email address")
        }
    }

    /// Throws `INVALID_PARAMETER` for `password` unless it is 8-72 bytes.
    public static func validatePassword(_ password: String) throws(OrchError) {
        guard passwordBytes.contains(password.utf8.count) else {
            throw .invalidParameter("password", "must be 8 to 72 bytes")
        }
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
