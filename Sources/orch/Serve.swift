import ArgumentParser
import Foundation
import OrchServer

/// `orch serve`: runs the server until SIGINT or SIGTERM.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the ORCH-Next server.",
        discussion: """
            Every option can also be set by its ORCH_* environment variable; an option given on \
            the command line wins. Exit codes: 0 after a graceful shutdown, 64 for invalid \
            configuration, 1 when the server fails.
            """)

    @Option(help: "Listen address (ORCH_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Listen port, 0 for any free port (ORCH_PORT, default 8000).") var port: String?
    @Option(help: "sqlite://PATH, sqlite::memory: or postgres://... (ORCH_DATABASE_URL, default sqlite://orch.sqlite).")
    var databaseURL: String?
    @Option(help: "HS256 key, at least 32 bytes (ORCH_JWT_SECRET; generated and stored when unset).")
    var jwtSecret: String?
    @Option(help: "Access token lifetime in seconds (ORCH_TOKEN_TTL, default 3600).") var tokenTTL: String?
    @Option(help: "First admin's username (ORCH_ADMIN_USERNAME, default admin).") var adminUsername: String?
    @Option(help: "First admin's password (ORCH_ADMIN_PASSWORD; generated and printed once when unset).")
    var adminPassword: String?
    @Option(help: "Comma-separated webhook secrets (ORCH_WEBHOOK_SECRETS).") var webhookSecrets: String?
    @Option(help: "Webhook timestamp tolerance in seconds (ORCH_WEBHOOK_TOLERANCE, default 300).")
    var webhookTolerance: String?
    @Option(help: "Requests per minute by role, e.g. admin=1000,viewer=200; 0 = unlimited (ORCH_RATE_LIMITS).")
    var rateLimits: String?
    @Option(help: "Seconds between SSE heartbeats (ORCH_SSE_HEARTBEAT, default 15).") var sseHeartbeat: String?
    @Option(help: "Undelivered events an SSE stream may hold before it is cut (ORCH_SSE_BUFFER, default 1024).")
    var sseBuffer: String?
    @Option(help: "Comma-separated host patterns callbacks may reach (ORCH_CALLBACK_ALLOWED_HOSTS, default any).")
    var callbackAllowedHosts: String?
    @Option(help: "Seconds to wait after each failed callback attempt (ORCH_CALLBACK_RETRIES, default 10,60,300,1800,7200).")
    var callbackRetries: String?
    @Option(help: "Seconds a callback attempt may take (ORCH_CALLBACK_TIMEOUT, default 10).") var callbackTimeout: String?
    @Option(help: "Log level (ORCH_LOG_LEVEL, default info).") var logLevel: String?
    @Option(help: "bcrypt cost 10-16 (ORCH_BCRYPT_COST, default 10).") var bcryptCost: String?
    @Option(help: "Seconds between monitor samples (ORCH_MONITOR_INTERVAL, default 10).") var monitorInterval: String?
    @Option(
        help: """
            Monitor alert thresholds, e.g. queue_depth=1000,queue_age=300,lock_wait=60,db_latency_ms=500,memory_mb=2048; \
            0 turns one off (ORCH_ALERT_THRESHOLDS).
            """)
    var alertThresholds: String?

    @Flag(help: "Print the effective configuration (secrets masked) and exit.") var printConfig = false

    /// The options given, keyed by their environment variable.
    var flags: [String: String] {
        let given: [String: String?] = [
            "ORCH_HOST": host, "ORCH_PORT": port, "ORCH_DATABASE_URL": databaseURL, "ORCH_JWT_SECRET": jwtSecret,
            "ORCH_TOKEN_TTL": tokenTTL, "ORCH_ADMIN_USERNAME": adminUsername, "ORCH_ADMIN_PASSWORD": adminPassword,
            "ORCH_WEBHOOK_SECRETS": webhookSecrets, "ORCH_WEBHOOK_TOLERANCE": webhookTolerance,
            "ORCH_RATE_LIMITS": rateLimits, "ORCH_SSE_HEARTBEAT": sseHeartbeat, "ORCH_SSE_BUFFER": sseBuffer,
            "ORCH_CALLBACK_ALLOWED_HOSTS": callbackAllowedHosts, "ORCH_LOG_LEVEL": logLevel,
            "ORCH_CALLBACK_RETRIES": callbackRetries, "ORCH_CALLBACK_TIMEOUT": callbackTimeout,
            "ORCH_BCRYPT_COST": bcryptCost, "ORCH_MONITOR_INTERVAL": monitorInterval,
            "ORCH_ALERT_THRESHOLDS": alertThresholds,
        ]
        return given.compactMapValues { $0 }
    }

    func run() async throws {
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.load(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("orch: \(error)\n".utf8))
            throw ExitCode(64)
        }
        if printConfig {
            print(configuration.printable())
            return
        }
        LoggingSetup.bootstrap(level: configuration.logLevel)
        let app = try await buildApplication(configuration)
        try await app.runService()
    }
}
