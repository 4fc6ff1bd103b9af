/// The role of a user or API token.
///
/// Rights are ordered `viewer < operator < admin`. `system` is a service account: it has an
/// operator's rights (and the highest rate limit) but may not manage users.
public enum Role: String, Codable, Sendable, CaseIterable, Hashable {
    case viewer
    case `operator`
    case admin
    case system

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let role = Role(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "must be one of viewer, operator, admin, system")
        }
        self = role
    }

    /// The rank of this role's rights; `system` ranks with `operator`.
    public var rank: Int {
        switch self {
        case .viewer: 0
        case .operator, .system: 1
        case .admin: 2
        }
    }

    /// Whether this role has at least the rights of `minimum`.
    ///
    /// `system` satisfies `viewer` and `operator` but never `admin`, and nothing but `system`
    /// itself satisfies a `system` requirement.
    public func satisfies(_ minimum: Role) -> Bool {
        if minimum == .system { return self == .system }
        return rank >= minimum.rank
    }
}
