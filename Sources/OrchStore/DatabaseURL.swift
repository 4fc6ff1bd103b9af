/// Where the store lives, parsed from `ORCH_DATABASE_URL`.
public enum DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// `sqlite://PATH`: a SQLite file (relative paths are relative to the working directory).
    case sqliteFile(path: String)
    /// `sqlite::memory:`: a private in-memory database, gone when the server stops.
    case sqliteMemory
    /// `postgres://user:pass@host:port/db` (also `postgresql://`), parsed.
    case postgres(PostgresURL)

    /// Parses a database URL; `nil` when the scheme is not one of the three above or a
    /// PostgreSQL URL does not parse (``PostgresURL/init(parsing:)`` says why).
    public init?(_ text: String) {
        if text == "sqlite::memory:" || text == "sqlite://:memory:" {
            self = .sqliteMemory
        } else if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty else { return nil }
            self = .sqliteFile(path: path)
        } else if let url = try? PostgresURL(parsing: text) {
            self = .postgres(url)
        } else {
            return nil
        }
    }

    /// The URL with any password replaced by `***`.
    public var description: String {
        switch self {
        case .sqliteFile(let path): return "sqlite://\(path)"
        case .sqliteMemory: return "sqlite::memory:"
        case .postgres(let url): return url.description
        }
    }
}
