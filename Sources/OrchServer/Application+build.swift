import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// The application type `buildApplication` returns.
public typealias OrchApplication = Application<RouterResponder<OrchRequestContext>>

/// Opens the store named by `configuration` and assembles the server around it.
public func buildApplication(_ configuration: ServerConfiguration) async throws -> OrchApplication {
    let store = try await openStore(configuration.databaseURL, poolSize: configuration.databasePool, serving: true)
    return try await buildApplication(configuration, store: store)
}

/// Opens the store at `url` (a PostgreSQL pool of at most `poolSize` connections). With
/// `serving`, a SQLite file is taken for this server alone (a second server on it stops with
/// ``SQLiteInUseError``).
public func openStore(
    _ url: DatabaseURL, poolSize: Int = 20, serving: Bool = false, logger: Logger = Logger(label: "orch.store")
) async throws -> any Store {
    switch url {
    case .sqliteFile, .sqliteMemory:
        return try SQLiteStore(location: url, serving: serving)
    case .postgres(let postgres):
        return try await PostgresStore.open(postgres, poolSize: poolSize, logger: logger)
    }
}

/// Assembles the server on `store`: secrets, the first admin, routes and middleware, and the
/// services that run beside the HTTP server. Shutdown on SIGINT or SIGTERM is graceful: the
/// server stops accepting, finishes in-flight requests, then the store is closed.
public func buildApplication(_ configuration: ServerConfiguration, store: any Store) async throws -> OrchApplication {
    try await buildServer(configuration, store: store).application
}

/// The assembled server and the pieces tests and tools look into.
struct OrchServerParts {
    let application: OrchApplication
    /// Every route, with its access rule.
    let routes: RouteTable
    let bus: EventBus
    let alerts: SystemAlerts
    let metrics: OrchMetrics
    let store: any Store
    /// Every open client connection.
    let connections: ConnectionTable
}

/// Assembles the server on `store` (see ``buildApplication(_:store:)``), logging through
/// `logger` (by default swift-log's bootstrapped handler, label `orch`).
func buildServer(
    _ configuration: ServerConfiguration, store: any Store, logger: Logger = Logger(label: "orch")
) async throws -> OrchServerParts {
    var logger = logger
    logger.logLevel = configuration.logLevel
    let metrics = OrchMetrics()
    let bus = EventBus(
        store: store, lastSequence: try await store.lastEventSequence(),
        memory: StreamMemory(limit: configuration.sseMemory), announces: store.cluster != nil)
    _ = bus.listen { [metrics] events in metrics.recordEvents(events) }
    let locks = LockManager(store: store, bus: bus, nodeID: configuration.nodeID, metrics: metrics)
    // Waiters left by an earlier run under this node id wait no more.
    try await store.forgetNode(configuration.nodeID)
    try await store.recordNodeSeen(configuration.nodeID)
    let alerts = SystemAlerts(store: store, bus: bus)
    let heartbeat = MonitorHeartbeat(interval: .seconds(configuration.monitorInterval))
    let limits = configuration.connectionLimits
    let descriptorLimit = DescriptorLimit.raiseToHardLimit()
    let maximumConnections = limits.effectiveMaximumConnections(descriptorLimit: descriptorLimit)
    if let asked = limits.maximumConnections, asked > maximumConnections {
        logger.warning(
            "ORCH_MAX_CONNECTIONS lowered to keep 64 descriptors free",
            metadata: ["asked": "\(asked)", "used": "\(maximumConnections)", "descriptor_limit": "\(descriptorLimit)"])
    }
    let connections = ConnectionTable(
        maximumConnections: maximumConnections,
        maximumAnonymousPerAddress: limits.maximumAnonymousPerAddress, trustedProxies: configuration.trustedProxies,
        metrics: metrics, logger: logger)
    let cluster = ClusterState(nodeID: configuration.nodeID, clustered: store.cluster != nil, metrics: metrics)
    let api = try await buildAPI(
        configuration, store: store, bus: bus, locks: locks, metrics: metrics, monitor: heartbeat,
        connections: connections, cluster: cluster, logger: logger)
    // After the secrets are settled: a node refused at start prints its one line alone.
    logger.info(
        "connection limits",
        metadata: ["max_connections": "\(maximumConnections)", "descriptor_limit": "\(descriptorLimit)"])
    var server = HTTPServerBuilder.guarded(limits: limits, connections: connections, metrics: metrics)
    if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
        server = try .tls(server, tlsConfiguration: try ServerTLS.configuration(certificatePath: certificate, keyPath: key))
    }
    let scheme = configuration.tlsCertificatePath == nil ? "http" : "https"
    let application = Application(
        router: api.router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "orch"),
        services: clusterServices(cluster, store: store, bus: bus, logger: logger) + [
            StoreCloser(store: store, logger: logger),
            TaskSupervisor(store: store, bus: bus, logger: logger),
            ScheduleRunner(store: store, bus: bus, logger: logger),
            Pruner(
                store: store, policy: configuration.retention, interval: .seconds(configuration.retentionInterval),
                receiptLifetime: TimeInterval(2 * configuration.webhookTolerance), metrics: metrics, logger: logger),
            EventStreamTicker(bus: bus, store: store, heartbeatInterval: configuration.sseHeartbeat, logger: logger),
            LockSupervisor(locks: locks, logger: logger),
            CallbackDeliverer(
                store: store, bus: bus, secrets: configuration.webhookSecrets,
                schedule: configuration.callbackRetrySchedule, timeout: configuration.callbackTimeout,
                allowedHosts: configuration.callbackAllowedHosts, logger: logger,
                metrics: metrics),
            Monitor(
                store: store, locks: locks, alerts: alerts, metrics: metrics, heartbeat: heartbeat,
                thresholds: configuration.alertThresholds, cluster: cluster, logger: logger),
        ],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            // One line on standard output that scripts and tests can wait for.
            printLine("orch: listening on \(scheme)://\(configuration.host):\(port)")
        },
        logger: logger)
    return OrchServerParts(
        application: application, routes: api.table, bus: bus, alerts: alerts, metrics: metrics, store: store,
        connections: connections)
}

/// Everything but the HTTP server: secrets, the first admin, and every route with its
/// middleware. The returned router's ``APIRouter/table`` lists every route.
func buildAPI(
    _ configuration: ServerConfiguration, store: any Store, bus: EventBus, locks: LockManager, metrics: OrchMetrics,
    monitor: MonitorHeartbeat, connections: ConnectionTable? = nil, cluster: ClusterState? = nil, logger: Logger
) async throws -> APIRouter {
    let secret = try await jwtSecret(configuration, store: store)
    let passwords = PasswordHasher(cost: configuration.bcryptCost)
    try await createFirstAdmin(configuration, store: store, passwords: passwords, logger: logger)
    let authenticator = await Authenticator(secret: secret, tokenTTL: configuration.tokenTTL, store: store)
    let requestCounter = RequestCounter()

    let router = Router(context: OrchRequestContext.self, options: .autoGenerateHeadEndpoints)
    let api = APIRouter(router: router, authenticator: authenticator, connections: connections)
    if !configuration.corsOrigins.isEmpty {
        router.add(middleware: CORSMiddleware(policy: configuration.corsOrigins))
    }
    router.add(
        middleware: EnvelopeMiddleware(
            routes: { api.table }, requestCounter: requestCounter, metrics: metrics,
            trustedProxies: configuration.trustedProxies))
    if configuration.rateLimits.values.contains(where: { $0 > 0 }) {
        router.add(
            middleware: RateLimitMiddleware(
                limiter: RateLimiter(window: 60), limits: configuration.rateLimits, authenticator: authenticator,
                routes: { api.table }, metrics: metrics))
    }
    HealthController(
        store: store, requestCounter: requestCounter, startedAt: .now, securityReady: !secret.isEmpty, monitor: monitor,
        cluster: cluster ?? ClusterState(nodeID: configuration.nodeID, clustered: store.cluster != nil)
    ).addRoutes(to: api)
    MetricsController(store: store, locks: locks, metrics: metrics).addRoutes(to: api)
    AuthController(store: store, authenticator: authenticator, passwords: passwords, throttle: configuration.loginThrottle)
        .addRoutes(to: api)
    APITokenController(store: store, bus: bus).addRoutes(to: api)
    UserController(store: store, passwords: passwords, bus: bus).addRoutes(to: api)
    DispatchController(store: store, bus: bus, callbackAllowedHosts: configuration.callbackAllowedHosts).addRoutes(to: api)
    TaskController(store: store, bus: bus).addRoutes(to: api)
    CoreController(store: store, bus: bus).addRoutes(to: api)
    ScheduleController(store: store, callbackAllowedHosts: configuration.callbackAllowedHosts).addRoutes(to: api)
    WorkerController(store: store, bus: bus, signals: CoreSignals(bus: bus)).addRoutes(to: api)
    EventStreamController(
        store: store, bus: bus, bufferCapacity: configuration.sseBufferSize,
        bufferBytes: configuration.sseBufferBytes, metrics: metrics)
        .addRoutes(to: api)
    LockController(store: store, locks: locks).addRoutes(to: api)
    WebhookController(
        store: store, bus: bus, secrets: configuration.webhookSecrets, tolerance: configuration.webhookTolerance,
        metrics: metrics
    ).addRoutes(to: api)
    // Counting from now, then the hour before from the store, so that nothing is counted twice.
    let rollup = TaskRollup(countingFrom: Date())
    _ = bus.listen { [rollup] events in rollup.record(events) }
    await rollup.warm(from: store, logger: logger)
    let alertBoard = AlertBoard()
    _ = bus.listen { [alertBoard] events in alertBoard.record(events) }
    StatsController(rollup: rollup, alerts: alertBoard).addRoutes(to: api)
    OpenAPIController().addRoutes(to: api)
    DashboardController().addRoutes(to: router)
    return api
}

/// The JWT secret, one for every node of a database: `ORCH_JWT_SECRET`, else the secret
/// generated on the first start and kept in the database.
///
/// The secret's fingerprint (``JWTSecretMismatch/fingerprint(of:)``) is kept in the database
/// too, so that a node whose secret differs from the one the others use stops at start instead
/// of refusing their tokens (and they its). `ORCH_JWT_SECRET_ROTATE` makes this start's secret
/// (a fresh one when `ORCH_JWT_SECRET` is unset) replace it.
func jwtSecret(_ configuration: ServerConfiguration, store: any Store) async throws -> String {
    let key = "jwt_secret"
    let secret: String
    if let configured = configuration.jwtSecret {
        secret = configured
    } else if configuration.jwtSecretRotate {
        secret = generatedSecret()
        try await store.storeSetting(key, value: secret)
    } else {
        secret = try await store.insertSettingIfAbsent(key, value: generatedSecret())
    }
    let fingerprint = JWTSecretMismatch.fingerprint(of: secret)
    if configuration.jwtSecretRotate {
        try await store.storeSetting(JWTSecretMismatch.settingKey, value: fingerprint)
    } else if try await store.insertSettingIfAbsent(JWTSecretMismatch.settingKey, value: fingerprint) != fingerprint {
        throw JWTSecretMismatch(configured: configuration.jwtSecret != nil)
    }
    return secret
}

private func generatedSecret() -> String {
    var bytes = [UInt8](repeating: 0, count: 48)
    var generator = SystemRandomNumberGenerator()
    for index in bytes.indices { bytes[index] = generator.next() }
    return Data(bytes).base64EncodedString()
}

/// This node's JWT secret is not the one the database's other nodes use (see
/// ``jwtSecret(_:store:)``): `orch serve` stops at start with this one line.
public struct JWTSecretMismatch: Error, CustomStringConvertible {
    /// Where the fingerprint of the database's JWT secret is kept.
    static let settingKey = "jwt_secret_fingerprint"

    /// Whether this node's secret came from `ORCH_JWT_SECRET`.
    var configured: Bool

    public var description: String {
        (configured
            ? "ORCH_JWT_SECRET differs from the JWT secret this database's nodes use"
            : "this node has no ORCH_JWT_SECRET, but this database's nodes use one")
            + " (the fingerprints differ), so tokens of one would be refused by the other: give every node the same"
            + " ORCH_JWT_SECRET (or none), or start once with ORCH_JWT_SECRET_ROTATE=true to replace the secret"
            + " (tokens signed with the old one are then refused)"
    }

    /// An HMAC-SHA256 of a fixed text under `secret`: equal for equal secrets, and it does not
    /// reveal the secret.
    static func fingerprint(of secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("orch jwt secret fingerprint".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }
}

/// Creates the first admin when there are no users. Without `ORCH_ADMIN_PASSWORD` a password is
/// generated and printed once on standard output; it is never stored in clear or shown again.
func createFirstAdmin(
    _ configuration: ServerConfiguration, store: any Store, passwords: PasswordHasher, logger: Logger
) async throws {
    guard try await store.countUsers() == 0 else { return }
    try UserRules.validateUsername(configuration.adminUsername)
    let generated = configuration.adminPassword == nil
    let password = configuration.adminPassword ?? generatePassword()
    try UserRules.validatePassword(password)
    let admin = UserRecord(
        id: Identifier.make("user"), username: configuration.adminUsername,
        email: "\(configuration.adminUsername)@localhost.localdomain", role: .admin,
        passwordHash: try await passwords.hash(password), createdAt: Date())
    guard try await store.createFirstUser(admin) else { return }
    logger.notice("created the first admin", metadata: ["username": "\(admin.username)"])
    if generated {
        printLine(
            """
            orch: created admin user '\(admin.username)' with generated password: \(password)
            orch: this password is shown only once; change it with PATCH /users/\(admin.id)
            """)
    }
}

/// 24 characters from a 62-letter alphabet (about 143 bits).
func generatePassword() -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    var generator = SystemRandomNumberGenerator()
    return String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
}

/// Closes the store when the service group shuts down, after the HTTP server has stopped.
struct StoreCloser: Service {
    let store: any Store
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        do {
            try await store.close()
        } catch {
            logger.warning("closing the store failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Writes `text` and a newline to standard output at once (unbuffered, so a pipe sees it now).
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// ``ClusterSync`` and ``Leadership`` when the store can have other nodes (PostgreSQL).
private func clusterServices(_ cluster: ClusterState, store: any Store, bus: EventBus, logger: Logger) -> [any Service] {
    guard let channel = store.cluster else { return [] }
    return [
        ClusterSync(channel: channel, bus: bus, store: store, state: cluster, logger: logger),
        Leadership(channel: channel, state: cluster, logger: logger),
    ]
}
