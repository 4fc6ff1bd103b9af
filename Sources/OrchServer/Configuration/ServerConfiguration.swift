import Foundation
import OrchCore
import Logging
import OrchStore

/// Everything `orch serve` can be configured with.
///
/// Each value comes from its `orch serve` flag, else its `ORCH_*` environment variable, else
/// the default documented on the property. ``settings`` is the single table of names, parsers
/// and defaults that `--print-config`, the README and the command-line flags follow.
public struct ServerConfiguration: Sendable {
    /// Listen address. Default `127.0.0.1` (`ORCH_HOST`).
    public var host: String = "127.0.0.1"
    /// Listen port; 0 picks a free port. Default `8000` (`ORCH_PORT`).
    public var port: Int = 8000
    /// Where data lives. Default `sqlite://orch.sqlite` (`ORCH_DATABASE_URL`).
    public var databaseURL: DatabaseURL = .sqliteFile(path: "orch.sqlite")
    /// The most connections the PostgreSQL pool opens. Default 20 (`ORCH_DATABASE_POOL`).
    public var databasePool: Int = 20
    /// HS256 key for access tokens; when `nil`, one is generated once and kept in the database
    /// (`ORCH_JWT_SECRET`).
    public var jwtSecret: String?
    /// Starts with this node's JWT secret replacing the one the database's nodes used (its
    /// fingerprint), instead of refusing to start when they differ; unset ORCH_JWT_SECRET with
    /// it generates a new secret. Tokens signed with the old secret are refused afterwards.
    /// Default false (`ORCH_JWT_SECRET_ROTATE`).
    public var jwtSecretRotate = false
    /// Access token lifetime in seconds. Default 3600 (`ORCH_TOKEN_TTL`).
    public var tokenTTL: Int = 3600
    /// The first admin's username, used only when there are no users. Default `admin`
    /// (`ORCH_ADMIN_USERNAME`).
    public var adminUsername: String = "admin"
    /// The first admin's password; when `nil`, one is generated and printed once
    /// (`ORCH_ADMIN_PASSWORD`).
    public var adminPassword: String?
    /// Secrets verifying incoming webhooks; the first signs callbacks. Default none
    /// (`ORCH_WEBHOOK_SECRETS`, comma-separated).
    public var webhookSecrets: [String] = []
    /// Seconds a webhook timestamp may differ from now. Default 300 (`ORCH_WEBHOOK_TOLERANCE`).
    public var webhookTolerance: Int = 300
    /// Requests per minute by role; 0 means unlimited (`ORCH_RATE_LIMITS`).
    public var rateLimits: [String: Int] = ServerConfiguration.defaultRateLimits
    /// Seconds between SSE heartbeats. Default 15 (`ORCH_SSE_HEARTBEAT`).
    public var sseHeartbeat: Int = 15
    /// Undelivered events an SSE stream may hold before it is cut (the client resumes by id).
    /// Default 1024 (`ORCH_SSE_BUFFER`).
    public var sseBufferSize: Int = 1024
    /// Bytes of undelivered frames an SSE stream may hold before it is cut. Default 1 MiB
    /// (`ORCH_SSE_BUFFER_BYTES`).
    public var sseBufferBytes: Int = 1 << 20
    /// Bytes of undelivered frames all SSE streams may hold together; beyond it the streams
    /// furthest behind are cut first. Default 256 MiB (`ORCH_SSE_MEMORY`).
    public var sseMemory: Int = 256 << 20
    /// Seconds to wait after each failed callback attempt before the next; after the last, the
    /// callback is given up. Default 10, 60, 300, 1800, 7200 (`ORCH_CALLBACK_RETRIES`).
    public var callbackRetrySchedule: [Int] = [10, 60, 300, 1800, 7200]
    /// Seconds a callback attempt may take. Default 10 (`ORCH_CALLBACK_TIMEOUT`).
    public var callbackTimeout: Int = 10
    /// Host patterns callbacks may reach, whatever their address; empty means any host whose
    /// addresses are public (``CallbackAddress``) (`ORCH_CALLBACK_ALLOWED_HOSTS`).
    public var callbackAllowedHosts: [String] = []
    /// Log level. Default `info` (`ORCH_LOG_LEVEL`).
    public var logLevel: Logger.Level = .info
    /// bcrypt cost for password hashes, 10-16. Default 10 (`ORCH_BCRYPT_COST`).
    public var bcryptCost: Int = 10
    /// Seconds between the monitor's samples. Default 10 (`ORCH_MONITOR_INTERVAL`).
    public var monitorInterval: Int = 10
    /// This node's name among the nodes of one database (`/health`, logs, its own cluster
    /// notices). Default: generated at start, `node-` and 8 hex digits (`ORCH_NODE_ID`).
    public var nodeID: String = "node-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    /// When the monitor raises alerts (`ORCH_ALERT_THRESHOLDS`, e.g. `queue_depth=1000,queue_age=300`).
    public var alertThresholds = AlertThresholds()
    /// Timeouts and caps of client connections (`ORCH_HEADER_TIMEOUT`, `ORCH_BODY_TIMEOUT`,
    /// `ORCH_IDLE_TIMEOUT`, `ORCH_MAX_CONNECTIONS`, `ORCH_MAX_ANONYMOUS_CONNECTIONS`,
    /// `ORCH_MAX_HEADER_BYTES`, `ORCH_SHUTDOWN_GRACE`).
    public var connectionLimits = ConnectionLimits()
    /// Peers whose `X-Forwarded-For` names the client, and which are exempt from the per-address
    /// connection cap. Default none (`ORCH_TRUSTED_PROXIES`, addresses and CIDR ranges).
    public var trustedProxies = AddressPatterns()
    /// PEM files of the certificate (chain) and its private key (RSA or EC): with both the
    /// server speaks HTTPS only (`ORCH_TLS_CERT`, `ORCH_TLS_KEY`; ``ServerTLS``).
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// How long finished tasks and free-standing events are kept (`ORCH_RETENTION`).
    public var retention = RetentionPolicy()
    /// Seconds between pruning passes (`ORCH_RETENTION_INTERVAL`, default 60).
    public var retentionInterval = 60
    /// Browser origins whose pages may call the API (``CORSPolicy``). Default none: same
    /// origin only (`ORCH_CORS_ORIGINS`, comma-separated origins or `*`).
    public var corsOrigins = CORSPolicy()
    /// How failed logins are slowed and refused (not an environment setting: the policy's
    /// defaults, adjustable by tests that need a lockout longer than a loaded machine's delays).
    public var loginThrottle = LoginThrottle()

    /// `admin=1000,operator=500,viewer=200,system=2000,anonymous=100`.
    public static let defaultRateLimits = [
        "admin": 1000, "operator": 500, "viewer": 200, "system": 2000, "anonymous": 100,
    ]

    public init() {}
}

/// A configuration value that could not be read.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ServerConfiguration {
    /// One configuration setting: its names, how to read it and how to show it.
    public struct Setting: Sendable {
        /// The `orch serve` flag, without dashes (`database-url`).
        public let flag: String
        /// The environment variable (`ORCH_DATABASE_URL`).
        public let variable: String
        /// Whether `--print-config` masks the value.
        public let isSecret: Bool
        /// What the setting means, for `--help`.
        public let help: String
        let apply: @Sendable (inout ServerConfiguration, String) throws -> Void
        let show: @Sendable (ServerConfiguration) -> String
    }

    /// Reads the configuration: for each setting the flag's value (`flags`, keyed by variable
    /// name) wins over the environment, which wins over the default.
    ///
    /// Throws ``ConfigurationError`` naming the variable of the first bad value.
    public static func load(flags: [String: String], environment: [String: String]) throws -> ServerConfiguration
    {
        var configuration = ServerConfiguration()
        for setting in settings {
            if let value = flags[setting.variable] ?? environment[setting.variable] {
                try setting.apply(&configuration, value)
            }
        }
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw ConfigurationError("ORCH_TLS_CERT and ORCH_TLS_KEY go together: give both for HTTPS, or neither")
        }
        return configuration
    }

    /// `NAME=value` lines for every setting, secrets shown as `***` (or `(generated)` when unset).
    public func printable() -> String {
        Self.settings.map { setting in
            let value = setting.show(self)
            let shown = setting.isSecret && !value.isEmpty && value != "(generated)" ? "***" : value
            return "\(setting.variable)=\(shown)"
        }.joined(separator: "\n")
    }

    /// Every setting, in the order `--print-config` prints them.
    public static let settings: [Setting] = [
        Setting(
            flag: "host", variable: "ORCH_HOST", isSecret: false, help: "Listen address.",
            apply: { $0.host = try nonEmpty($1, "ORCH_HOST") }, show: { $0.host }),
        Setting(
            flag: "port", variable: "ORCH_PORT", isSecret: false, help: "Listen port (0 picks a free one).",
            apply: { $0.port = try integer($1, "ORCH_PORT", in: 0...65535) }, show: { String($0.port) }),
        Setting(
            flag: "database-url", variable: "ORCH_DATABASE_URL", isSecret: false,
            help: "sqlite://PATH, sqlite::memory: or postgres://user:pass@host:port/db.",
            apply: { configuration, value throws(ConfigurationError) in
                if value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") {
                    do {
                        configuration.databaseURL = .postgres(try PostgresURL(parsing: value))
                        return
                    } catch {
                        throw ConfigurationError("ORCH_DATABASE_URL: \(error)")
                    }
                }
                guard let url = DatabaseURL(value) else {
                    throw ConfigurationError("ORCH_DATABASE_URL: expected sqlite://PATH, sqlite::memory: or postgres://...")
                }
                configuration.databaseURL = url
            }, show: { $0.databaseURL.description }),
        Setting(
            flag: "database-pool", variable: "ORCH_DATABASE_POOL", isSecret: false,
            help: "Most PostgreSQL connections the server opens.",
            apply: { $0.databasePool = try integer($1, "ORCH_DATABASE_POOL", in: 1...1000) },
            show: { String($0.databasePool) }),
        Setting(
            flag: "jwt-secret", variable: "ORCH_JWT_SECRET", isSecret: true,
            help: "HS256 key (at least 32 bytes); generated and stored in the database when unset.",
            apply: { configuration, value throws(ConfigurationError) in
                guard value.utf8.count >= 32 else { throw ConfigurationError("ORCH_JWT_SECRET: must be at least 32 bytes") }
                configuration.jwtSecret = value
            }, show: { $0.jwtSecret ?? "(generated)" }),
        Setting(
            flag: "jwt-secret-rotate", variable: "ORCH_JWT_SECRET_ROTATE", isSecret: false,
            help: "true: this start replaces the JWT secret the database's nodes use (a fresh one when ORCH_JWT_SECRET is unset).",
            apply: { $0.jwtSecretRotate = try boolean($1, "ORCH_JWT_SECRET_ROTATE") },
            show: { String($0.jwtSecretRotate) }),
        Setting(
            flag: "token-ttl", variable: "ORCH_TOKEN_TTL", isSecret: false, help: "Access token lifetime, seconds.",
            apply: { $0.tokenTTL = try integer($1, "ORCH_TOKEN_TTL", in: 60...31_536_000) },
            show: { String($0.tokenTTL) }),
        Setting(
            flag: "admin-username", variable: "ORCH_ADMIN_USERNAME", isSecret: false,
            help: "First admin's username (used only when there are no users).",
            apply: { $0.adminUsername = try nonEmpty($1, "ORCH_ADMIN_USERNAME") }, show: { $0.adminUsername }),
        Setting(
            flag: "admin-password", variable: "ORCH_ADMIN_PASSWORD", isSecret: true,
            help: "First admin's password; generated and printed once when unset.",
            apply: { $0.adminPassword = try nonEmpty($1, "ORCH_ADMIN_PASSWORD") },
            show: { $0.adminPassword ?? "(generated)" }),
        Setting(
            flag: "webhook-secrets", variable: "ORCH_WEBHOOK_SECRETS", isSecret: true,
            help: "Comma-separated webhook secrets; any one verifies, the first signs callbacks.",
            apply: { $0.webhookSecrets = list($1) }, show: { $0.webhookSecrets.joined(separator: ",") }),
        Setting(
            flag: "webhook-tolerance", variable: "ORCH_WEBHOOK_TOLERANCE", isSecret: false,
            help: "Seconds a webhook timestamp may differ from now.",
            apply: { $0.webhookTolerance = try integer($1, "ORCH_WEBHOOK_TOLERANCE", in: 1...86_400) },
            show: { String($0.webhookTolerance) }),
        Setting(
            flag: "rate-limits", variable: "ORCH_RATE_LIMITS", isSecret: false,
            help: "Requests per minute by role, e.g. admin=1000,viewer=200; 0 = unlimited.",
            apply: { $0.rateLimits = try rateLimits($1) },
            show: { $0.rateLimits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }),
        Setting(
            flag: "sse-heartbeat", variable: "ORCH_SSE_HEARTBEAT", isSecret: false,
            help: "Seconds between SSE heartbeat events.",
            apply: { $0.sseHeartbeat = try integer($1, "ORCH_SSE_HEARTBEAT", in: 1...3600) },
            show: { String($0.sseHeartbeat) }),
        Setting(
            flag: "sse-buffer", variable: "ORCH_SSE_BUFFER", isSecret: false,
            help: "Undelivered events an SSE stream may hold before it is cut.",
            apply: { $0.sseBufferSize = try integer($1, "ORCH_SSE_BUFFER", in: 1...1_000_000) },
            show: { String($0.sseBufferSize) }),
        Setting(
            flag: "sse-buffer-bytes", variable: "ORCH_SSE_BUFFER_BYTES", isSecret: false,
            help: "Bytes of undelivered events an SSE stream may hold before it is cut (e.g. 1MiB).",
            apply: { $0.sseBufferBytes = try byteSize($1, "ORCH_SSE_BUFFER_BYTES", in: 1024...(1 << 30)) },
            show: { String($0.sseBufferBytes) }),
        Setting(
            flag: "sse-memory", variable: "ORCH_SSE_MEMORY", isSecret: false,
            help: "Bytes of undelivered events all SSE streams may hold together (e.g. 256MiB); the slowest are cut first.",
            apply: { $0.sseMemory = try byteSize($1, "ORCH_SSE_MEMORY", in: (1 << 20)...(1 << 40)) },
            show: { String($0.sseMemory) }),
        Setting(
            flag: "callback-allowed-hosts", variable: "ORCH_CALLBACK_ALLOWED_HOSTS", isSecret: false,
            help: "Comma-separated host patterns callbacks may reach, even at internal addresses (default: any public host).",
            apply: { $0.callbackAllowedHosts = list($1) }, show: { $0.callbackAllowedHosts.joined(separator: ",") }),
        Setting(
            flag: "callback-retries", variable: "ORCH_CALLBACK_RETRIES", isSecret: false,
            help: "Comma-separated seconds to wait after each failed callback attempt, e.g. 10,60,300,1800,7200.",
            apply: { configuration, value throws(ConfigurationError) in
                let waits = list(value).map { Int($0) }
                guard !waits.isEmpty, waits.allSatisfy({ ($0 ?? -1) >= 0 && ($0 ?? 0) <= 86_400 }) else {
                    throw ConfigurationError("ORCH_CALLBACK_RETRIES: expected comma-separated seconds (0-86400)")
                }
                configuration.callbackRetrySchedule = waits.compactMap { $0 }
            }, show: { $0.callbackRetrySchedule.map(String.init).joined(separator: ",") }),
        Setting(
            flag: "callback-timeout", variable: "ORCH_CALLBACK_TIMEOUT", isSecret: false,
            help: "Seconds a callback attempt may take.",
            apply: { $0.callbackTimeout = try integer($1, "ORCH_CALLBACK_TIMEOUT", in: 1...300) },
            show: { String($0.callbackTimeout) }),
        Setting(
            flag: "log-level", variable: "ORCH_LOG_LEVEL", isSecret: false,
            help: "trace, debug, info, notice, warning, error or critical.",
            apply: { configuration, value throws(ConfigurationError) in
                guard let level = Logger.Level(rawValue: value.lowercased()) else {
                    throw ConfigurationError("ORCH_LOG_LEVEL: expected trace, debug, info, notice, warning, error or critical")
                }
                configuration.logLevel = level
            }, show: { $0.logLevel.rawValue }),
        Setting(
            flag: "bcrypt-cost", variable: "ORCH_BCRYPT_COST", isSecret: false, help: "bcrypt cost, 10-16.",
            apply: { $0.bcryptCost = try integer($1, "ORCH_BCRYPT_COST", in: 10...16) }, show: { String($0.bcryptCost) }),
        Setting(
            flag: "monitor-interval", variable: "ORCH_MONITOR_INTERVAL", isSecret: false,
            help: "Seconds between the monitor's samples.",
            apply: { $0.monitorInterval = try integer($1, "ORCH_MONITOR_INTERVAL", in: 1...3600) },
            show: { String($0.monitorInterval) }),
        Setting(
            flag: "node-id", variable: "ORCH_NODE_ID", isSecret: false,
            help: "This node's name among the nodes of one database (default: generated at start).",
            apply: { configuration, value throws(ConfigurationError) in
                let name = try nonEmpty(value, "ORCH_NODE_ID")
                guard name.count <= 64, !name.contains(" ") else {
                    throw ConfigurationError("ORCH_NODE_ID: at most 64 characters, no spaces")
                }
                configuration.nodeID = name
            }, show: { $0.nodeID }),
        Setting(
            flag: "alert-thresholds", variable: "ORCH_ALERT_THRESHOLDS", isSecret: false,
            help: "Monitor alert thresholds: queue_depth, queue_age (s), lock_wait (s), db_latency_ms, memory_mb; 0 = off.",
            apply: { $0.alertThresholds = try AlertThresholds(parsing: $1) }, show: { $0.alertThresholds.description }),
        seconds(
            "header-timeout", "ORCH_HEADER_TIMEOUT", \.headerTimeout, in: 1...3600,
            help: "Seconds a client may take to send a request's line and headers."),
        seconds(
            "body-timeout", "ORCH_BODY_TIMEOUT", \.bodyTimeout, in: 1...3600,
            help: "Seconds a request body may pause between two reads."),
        seconds(
            "idle-timeout", "ORCH_IDLE_TIMEOUT", \.idleTimeout, in: 1...86_400,
            help: "Seconds a kept-alive connection may wait for its next request."),
        Setting(
            flag: "max-connections", variable: "ORCH_MAX_CONNECTIONS", isSecret: false,
            help: "Open connections at most (default: three quarters of the descriptor limit, at most 100000).",
            apply: { $0.connectionLimits.maximumConnections = try integer($1, "ORCH_MAX_CONNECTIONS", in: 1...10_000_000) },
            show: { $0.connectionLimits.maximumConnections.map(String.init) ?? "(from the descriptor limit)" }),
        count(
            "max-anonymous-connections", "ORCH_MAX_ANONYMOUS_CONNECTIONS", \.maximumAnonymousPerAddress,
            in: 0...10_000_000, help: "Connections one address may hold before one of its requests authenticates; 0 = no cap."),
        count(
            "max-header-bytes", "ORCH_MAX_HEADER_BYTES", \.maximumHeaderBytes, in: 1024...1_048_576,
            help: "Bytes of request line and headers at most (431 beyond)."),
        seconds(
            "shutdown-grace", "ORCH_SHUTDOWN_GRACE", \.shutdownGrace, in: 0...3600,
            help: "Seconds requests in flight may take after SIGTERM before every connection is closed."),
        Setting(
            flag: "retention", variable: "ORCH_RETENTION", isSecret: false,
            help: "How long finished tasks and task-less events are kept: completed=D,failed=D,cancelled=D,events=D (D like 90s, 15m, 12h, 7d; 0 keeps forever).",
            apply: { configuration, value throws(ConfigurationError) in
                do {
                    configuration.retention = try RetentionPolicy(parsing: value)
                } catch {
                    throw ConfigurationError("ORCH_RETENTION: \(error)")
                }
            }, show: { $0.retention.description }),
        Setting(
            flag: "retention-interval", variable: "ORCH_RETENTION_INTERVAL", isSecret: false,
            help: "Seconds between pruning passes (default 60).",
            apply: { $0.retentionInterval = try integer($1, "ORCH_RETENTION_INTERVAL", in: 1...86_400) },
            show: { String($0.retentionInterval) }),
        Setting(
            flag: "tls-cert", variable: "ORCH_TLS_CERT", isSecret: false,
            help: "PEM file of the server's certificate chain; with --tls-key the port speaks HTTPS only.",
            apply: { $0.tlsCertificatePath = try nonEmpty($1, "ORCH_TLS_CERT") }, show: { $0.tlsCertificatePath ?? "" }),
        Setting(
            flag: "tls-key", variable: "ORCH_TLS_KEY", isSecret: false,
            help: "PEM file of the certificate's private key (RSA or EC).",
            apply: { $0.tlsKeyPath = try nonEmpty($1, "ORCH_TLS_KEY") }, show: { $0.tlsKeyPath ?? "" }),
        Setting(
            flag: "cors-origins", variable: "ORCH_CORS_ORIGINS", isSecret: false,
            help: "Comma-separated browser origins (https://app.example.com) whose pages may call the API, or *.",
            apply: { configuration, value throws(ConfigurationError) in
                guard let policy = CORSPolicy(parsing: value) else {
                    throw ConfigurationError("ORCH_CORS_ORIGINS: expected * or comma-separated origins such as https://app.example.com")
                }
                configuration.corsOrigins = policy
            }, show: { $0.corsOrigins.description }),
        Setting(
            flag: "trusted-proxies", variable: "ORCH_TRUSTED_PROXIES", isSecret: false,
            help: "Comma-separated addresses or CIDR ranges whose X-Forwarded-For names the client.",
            apply: { configuration, value throws(ConfigurationError) in
                guard let patterns = AddressPatterns(parsing: value) else {
                    throw ConfigurationError("ORCH_TRUSTED_PROXIES: expected comma-separated IP addresses or CIDR ranges")
                }
                configuration.trustedProxies = patterns
            }, show: { $0.trustedProxies.description }),
    ]

    /// Integer settings of ``connectionLimits``.
    private static func count(
        _ flag: String, _ variable: String, _ path: any WritableKeyPath<ConnectionLimits, Int> & Sendable,
        in range: ClosedRange<Int>, help: String
    ) -> Setting {
        Setting(
            flag: flag, variable: variable, isSecret: false, help: help,
            apply: { $0.connectionLimits[keyPath: path] = try integer($1, variable, in: range) },
            show: { String($0.connectionLimits[keyPath: path]) })
    }

    /// Settings of whole seconds kept as a `Duration` of ``connectionLimits``.
    private static func seconds(
        _ flag: String, _ variable: String, _ path: any WritableKeyPath<ConnectionLimits, Duration> & Sendable,
        in range: ClosedRange<Int>, help: String
    ) -> Setting {
        Setting(
            flag: flag, variable: variable, isSecret: false, help: help,
            apply: { $0.connectionLimits[keyPath: path] = .seconds(try integer($1, variable, in: range)) },
            show: { String($0.connectionLimits[keyPath: path].components.seconds) })
    }

    /// A byte count: digits with an optional unit, `K`/`KiB`, `M`/`MiB` or `G`/`GiB` (powers of
    /// 1024, any case).
    private static func byteSize(_ value: String, _ name: String, in range: ClosedRange<Int>) throws(ConfigurationError)
        -> Int
    {
        let text = value.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let units = ["": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30]
        guard let number = Int(digits), let unit = units[String(text.dropFirst(digits.count))],
            number <= Int.max / unit, range.contains(number * unit)
        else {
            throw ConfigurationError("\(name): expected a size such as 1048576, 512KiB or 256MiB, from \(range.lowerBound) to \(range.upperBound) bytes")
        }
        return number * unit
    }

    private static func nonEmpty(_ value: String, _ name: String) throws(ConfigurationError) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ConfigurationError("\(name): must not be empty") }
        return trimmed
    }

    private static func boolean(_ value: String, _ name: String) throws(ConfigurationError) -> Bool {
        switch value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw ConfigurationError("\(name): expected true or false")
        }
    }

    private static func integer(_ value: String, _ name: String, in range: ClosedRange<Int>) throws(ConfigurationError)
        -> Int
    {
        guard let number = Int(value.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ConfigurationError("\(name): expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    private static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func rateLimits(_ value: String) throws(ConfigurationError) -> [String: Int] {
        var limits = defaultRateLimits
        for entry in list(value) {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, limits.keys.contains(parts[0]), let limit = Int(parts[1]), limit >= 0 else {
                throw ConfigurationError(
                    "ORCH_RATE_LIMITS: expected role=N pairs for admin, operator, viewer, system, anonymous (got '\(entry)')")
            }
            limits[parts[0]] = limit
        }
        return limits
    }
}
