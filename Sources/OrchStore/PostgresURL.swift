import Foundation

/// The parts of a `postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...` URL (also
/// `postgresql://`), as PostgreSQL's own clients read it: user and password percent-decoded,
/// port 5432 and database = user when absent, `sslmode` one of `disable`, `prefer` (the
/// default), `require`, `verify-full`. The password is never part of ``description``.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    /// How the connection uses TLS (`sslmode`).
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, plain otherwise.
        case prefer
        /// TLS, without checking the server's certificate.
        case require
        /// TLS with the certificate checked against the host name.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tlsMode: TLSMode

    /// Why a URL was refused (never containing the password).
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(
        user: String, password: String?, host: String, port: Int = 5432, database: String, tlsMode: TLSMode = .prefer
    ) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.tlsMode = tlsMode
    }

    /// Parses `text`; throws ``ParseError`` saying what is wrong.
    public init(parsing text: String) throws(ParseError) {
        guard let schemeEnd = text.range(of: "://"),
            ["postgres", "postgresql"].contains(text[..<schemeEnd.lowerBound].lowercased())
        else { throw ParseError(description: "expected postgres://USER:PASSWORD@HOST:PORT/DB") }
        var rest = Substring(text[schemeEnd.upperBound...])
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var userInfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        guard let userInfo, !userInfo.isEmpty else { throw ParseError(description: "the URL names no user") }
        let credentials = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let user = String(credentials[0]).removingPercentEncoding, !user.isEmpty else {
            throw ParseError(description: "the user name is empty or badly percent-encoded")
        }
        var password: String?
        if credentials.count == 2 {
            guard let decoded = String(credentials[1]).removingPercentEncoding else {
                throw ParseError(description: "the password is badly percent-encoded")
            }
            password = decoded
        }
        var host = String(rest)
        var port = 5432
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw ParseError(description: "an IPv6 host needs its closing ]") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()), (1...65535).contains(number) else {
                    throw ParseError(description: "the port must be 1 to 65535")
                }
                port = number
            } else if !after.isEmpty {
                throw ParseError(description: "unexpected text after the host")
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                throw ParseError(description: "the port must be 1 to 65535")
            }
            port = number
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw ParseError(description: "the URL names no host") }
        guard let database = String(path).removingPercentEncoding else {
            throw ParseError(description: "the database name is badly percent-encoded")
        }
        var tlsMode = TLSMode.prefer
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == "sslmode" else {
                throw ParseError(description: "unknown URL option '\(parts[0])' (only sslmode is understood)")
            }
            guard let mode = TLSMode(rawValue: String(parts[1])) else {
                throw ParseError(description: "sslmode must be disable, prefer, require or verify-full")
            }
            tlsMode = mode
        }
        self.init(
            user: user, password: password, host: host, port: port, database: database.isEmpty ? user : database,
            tlsMode: tlsMode)
    }

    /// `postgres://USER:***@HOST:PORT/DB` (with `?sslmode=MODE` unless it is the default
    /// `prefer`): everything but the password.
    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        let secret = password == nil ? "" : ":***"
        let mode = tlsMode == .prefer ? "" : "?sslmode=\(tlsMode.rawValue)"
        return "postgres://\(user)\(secret)@\(hostText):\(port)/\(database)\(mode)"
    }

    /// The whole URL, password included (percent-encoded): for handing to another process,
    /// never for showing.
    public var connectionString: String {
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
        }
        let hostText = host.contains(":") ? "[\(host)]" : host
        let secret = password.map { ":" + encoded($0) } ?? ""
        return "postgres://\(encoded(user))\(secret)@\(hostText):\(port)/\(encoded(database))?sslmode=\(tlsMode.rawValue)"
    }
}
