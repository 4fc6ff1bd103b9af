/// Where the store lives, parsed from `ORCH_DATABASE_URL`.
public enum DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// `sqlite://PATH`: a SQLite file (relative paths are relative to the working directory).
    case sqliteFile(path: String)
    /// `sqlite::memory:`: a private in-memory database, gone when the server stops.
    case sqliteMemory
    /// `postgres://user:pass@host:port/db` (also `postgresql://`).
    case postgres(url: String)

    /// Parses a database URL; `nil` when the scheme is not one of the three above.
    public init?(_ text: String) {
        if text == "sqlite::memory:" || text == "sqlite://:memory:" {
            self = .sqliteMemory
        } else if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty else { return nil }
            self = .sqliteFile(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            return nil
        }
    }

    /// The URL with any password replaced by `***`.
    public var description: String {
        switch self {
        case .sqliteFile(let path): return "sqlite://\(path)"
        case .sqliteMemory: return "sqlite::memory:"
        case .postgres(let url):
            guard let schemeEnd = url.range(of: "://"), let at = url.range(of: "@", range: schemeEnd.upperBound..<url.endIndex)
            else { return url }
            let credentials = url[schemeEnd.upperBound..<at.lowerBound]
            guard let colon = credentials.firstIndex(of: ":") else { return url }
            return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
        }
    }
}
