import Foundation

/// Makes the prefixed identifiers the API uses (`user-<uuid>`, `req-<uuid>`, ...).
public enum Identifier {
    /// `<prefix>-<lowercase uuid>`.
    public static func make(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.lowercased())"
    }
}
