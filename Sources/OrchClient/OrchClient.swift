import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OrchModels
import Synchronization

/// A typed client for an ORCH-Next server, over AsyncHTTPClient.
///
/// Every call throws ``OrchClientError`` for an error answer (with the server's envelope: code,
/// message, details, request id; and `retryAfter` on 429), and passes through transport errors
/// (connection refused, timeouts) as AsyncHTTPClient reports them.
///
/// ```swift
/// let client = OrchClient(baseURL: "http://127.0.0.1:8000")
/// try await client.login(username: "admin", password: "…")
/// let task = try await client.dispatch(DispatchRequest(coreID: "WORK_AI_01"))
/// for try await event in client.events(taskID: task.taskID) { print(event.eventType) }
/// ```
public final class OrchClient: Sendable {
    /// The server, e.g. `http://127.0.0.1:8000` (no trailing slash).
    public let baseURL: String
    /// Longest time one request may take (a claim's long-poll adds its `wait`). Default 30 s.
    public let timeout: Duration
    let http: HTTPClient
    private let credential: Mutex<String?>

    /// - Parameters:
    ///   - baseURL: the server's address; a trailing `/` is ignored.
    ///   - token: a bearer token (login token or `orch_` API token); default none, set by
    ///     ``login(username:password:)``.
    ///   - timeout: per-request time limit; default 30 seconds.
    ///   - httpClient: the HTTP client to use; default `HTTPClient.shared` (pooled connections).
    public init(baseURL: String, token: String? = nil, timeout: Duration = .seconds(30), httpClient: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.timeout = timeout
        self.http = httpClient
        self.credential = Mutex(token)
    }

    /// The bearer token requests carry, if any.
    public var token: String? {
        get { credential.withLock { $0 } }
        set { credential.withLock { $0 = newValue } }
    }

    // MARK: Authentication

    /// Signs in and keeps the access token for later calls.
    @discardableResult
    public func login(username: String, password: String) async throws -> LoginResponse {
        let response: LoginResponse = try await send(
            .POST, "/auth/login", body: LoginRequest(username: username, password: password))
        token = response.accessToken
        return response
    }

    /// The caller's account.
    public func me() async throws -> User { try await send(.GET, "/auth/me") }

    /// Creates an API token; its secret is in the answer only.
    public func createAPIToken(_ request: CreateAPITokenRequest) async throws -> CreatedAPIToken {
        try await send(.POST, "/auth/tokens", body: request)
    }

    /// The caller's API tokens (an admin's list holds everyone's).
    public func apiTokens() async throws -> APITokenList { try await send(.GET, "/auth/tokens") }

    /// Revokes an API token at once.
    public func revokeAPIToken(id: String) async throws {
        _ = try await raw(.DELETE, "/auth/tokens/\(Self.escape(id))")
    }

    // MARK: Tasks

    /// Dispatches a task. With `idempotencyKey`, repeating the call within 24 hours answers the
    /// first task instead of creating another.
    public func dispatch(_ request: DispatchRequest, idempotencyKey: String? = nil) async throws -> DispatchResponse {
        var headers = HTTPHeaders()
        if let idempotencyKey { headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        return try await send(.POST, "/dispatch", body: request, headers: headers)
    }

    /// A page of tasks, newest first unless `sort`/`order` say otherwise. Defaults: every
    /// status and core, 50 per page.
    public func tasks(
        status: TaskStatus? = nil, coreID: String? = nil, priority: Int? = nil, limit: Int = 50, offset: Int = 0
    ) async throws -> TaskList {
        try await send(
            .GET, "/tasks",
            query: [
                ("status", status?.rawValue), ("core_id", coreID), ("priority", priority.map(String.init)),
                ("limit", String(limit)), ("offset", String(offset)),
            ])
    }

    /// One task.
    public func task(id: String) async throws -> OrchTask { try await send(.GET, "/tasks/\(Self.escape(id))") }

    /// A task's events, oldest first; default the first 100.
    public func taskEvents(taskID: String, eventType: String? = nil, limit: Int = 100, offset: Int = 0) async throws
        -> TaskEventList
    {
        try await send(
            .GET, "/jobs/\(Self.escape(taskID))/events",
            query: [("event_type", eventType), ("limit", String(limit)), ("offset", String(offset))])
    }

    /// Reports a task's progress or outcome.
    @discardableResult
    public func updateStatus(taskID: String, _ update: StatusUpdateRequest) async throws -> StatusUpdateResponse {
        try await send(.PUT, "/jobs/\(Self.escape(taskID))/status", body: update)
    }

    /// Claims up to `request.maxTasks` queued tasks of `core`, waiting up to `request.wait`
    /// seconds; an empty array when none arrived.
    public func claim(core: String, _ request: ClaimRequest) async throws -> [ClaimedTask] {
        let response = try await raw(
            .POST, "/cores/\(Self.escape(core))/claim", body: try Self.encode(request),
            extraTime: .seconds(Int64(request.wait)))
        guard response.status != 204 else { return [] }
        return try Self.decode(ClaimResponse.self, response.body).tasks
    }

    /// Extends a running task's lease; the answer says whether the task was cancelled.
    public func heartbeat(taskID: String, _ request: HeartbeatRequest) async throws -> HeartbeatResponse {
        try await send(.POST, "/jobs/\(Self.escape(taskID))/heartbeat", body: request)
    }

    // MARK: Locks

    /// Acquires (or renews) a lock, waiting up to `request.timeout` seconds.
    public func acquireLock(_ request: AcquireLockRequest) async throws -> LockGrant {
        let response = try await raw(
            .POST, "/locks", body: try Self.encode(request), extraTime: .seconds(Int64(request.timeout)))
        return try Self.decode(LockGrant.self, response.body)
    }

    /// Releases a lock held by `owner` (with `force`, an admin releases whoever holds it).
    @discardableResult
    public func releaseLock(resource: String, owner: String, force: Bool = false) async throws -> LockRelease {
        try await send(
            .DELETE, "/locks/\(Self.escape(resource))", query: [("owner", owner), ("force", force ? "true" : nil)])
    }

    /// Held locks and the wait queue.
    public func locks(resource: String? = nil, owner: String? = nil) async throws -> LockList {
        try await send(.GET, "/locks", query: [("resource", resource), ("owner", owner)])
    }

    /// Runs `body` while holding `resource`: acquires it (waiting up to `timeout` seconds),
    /// renews it every `ttl / 3` seconds while `body` runs, and releases it afterwards, also
    /// when `body` throws. If a renewal fails (the lock was lost), `body` is cancelled and the
    /// renewal's error is thrown.
    ///
    /// - Parameters:
    ///   - ttl: seconds the lock lasts between renewals; default 30.
    ///   - timeout: seconds to wait for the lock; default 0 (fail at once with 409 when held).
    ///   - priority: place among waiters (1-10); default 1.
    public func withLock<T: Sendable>(
        resource: String, owner: String, ttl: Int = 30, timeout: Int = 0, priority: Int = 1,
        _ body: @escaping @Sendable (LockGrant) async throws -> T
    ) async throws -> T {
        let request = AcquireLockRequest(resource: resource, owner: owner, ttl: ttl, priority: priority, timeout: timeout)
        let grant = try await acquireLock(request)
        let renewal = AcquireLockRequest(resource: resource, owner: owner, ttl: ttl, priority: priority, timeout: 0)
        let interval = Duration.milliseconds(max(100, ttl * 1000 / 3))
        let outcome: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await body(grant)) } catch { return .failure(error) }
            }
            group.addTask {
                do {
                    while true {
                        try await Task.sleep(for: interval)
                        _ = try await self.acquireLock(renewal)
                    }
                } catch is CancellationError {
                    return nil
                } catch {
                    return .failure(error)
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(CancellationError())
        }
        // Release whatever happened; a failed release does not hide the body's outcome.
        _ = try? await releaseLock(resource: resource, owner: owner)
        return try outcome.get()
    }

    // MARK: Users

    /// Creates a user (admin).
    public func createUser(_ request: CreateUserRequest) async throws -> User { try await send(.POST, "/users", body: request) }

    /// A page of users (admin); default every role and state, 50 per page.
    public func users(role: Role? = nil, isActive: Bool? = nil, limit: Int = 50, offset: Int = 0) async throws -> UserList {
        try await send(
            .GET, "/users",
            query: [
                ("role", role?.rawValue), ("is_active", isActive.map { $0 ? "true" : "false" }),
                ("limit", String(limit)), ("offset", String(offset)),
            ])
    }

    /// One user (admin).
    public func user(id: String) async throws -> User { try await send(.GET, "/users/\(Self.escape(id))") }

    /// Changes the given fields of a user (admin).
    public func updateUser(id: String, _ changes: UpdateUserRequest) async throws -> User {
        try await send(.PATCH, "/users/\(Self.escape(id))", body: changes)
    }

    // MARK: Operations

    /// The health report; a 503 (a component unhealthy) is answered, not thrown.
    public func health() async throws -> HealthReport {
        let response = try await raw(.GET, "/health", accept: [200, 503])
        return try Self.decode(HealthReport.self, response.body)
    }

    /// `/metrics` in Prometheus text format.
    public func metricsText() async throws -> String {
        String(buffer: try await raw(.GET, "/metrics").body)
    }

    // MARK: Transport

    struct RawResponse {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Largest answer body read (event pages and task lists stay far below).
    static let maximumBody = 64 * 1024 * 1024

    func request(_ method: HTTPMethod, _ path: String, query: [(String, String?)] = []) -> HTTPClientRequest {
        var url = baseURL + path
        let pairs = query.compactMap { name, value in value.map { "\(name)=\(Self.escape($0))" } }
        if !pairs.isEmpty { url += "?" + pairs.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "orch-client/\(OrchVersion.current)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    func raw(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], body: Data? = nil,
        headers: HTTPHeaders = [:], extraTime: Duration = .zero, accept: Set<Int>? = nil
    ) async throws -> RawResponse {
        var request = request(method, path, query: query)
        request.headers.add(contentsOf: headers)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let deadline = timeout + extraTime
        let response = try await http.execute(request, timeout: .nanoseconds(Self.nanoseconds(deadline)))
        let bytes = try await response.body.collect(upTo: Self.maximumBody)
        let status = Int(response.status.code)
        let accepted = accept.map { $0.contains(status) } ?? (200..<300).contains(status)
        if !accepted {
            throw OrchClientError(status: status, retryAfter: response.headers.first(name: "Retry-After"), body: Data(buffer: bytes))
        }
        return RawResponse(status: status, headers: response.headers, body: bytes)
    }

    func send<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], headers: HTTPHeaders = [:]
    ) async throws -> Response {
        try Self.decode(Response.self, try await raw(method, path, query: query, headers: headers).body)
    }

    func send<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, body: some Encodable, headers: HTTPHeaders = [:]
    ) async throws -> Response {
        try Self.decode(Response.self, try await raw(method, path, body: try Self.encode(body), headers: headers).body)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    static func encode(_ value: some Encodable) throws -> Data { try Timestamp.makeEncoder().encode(value) }

    static func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws -> T {
        try Timestamp.makeDecoder().decode(T.self, from: Data(buffer: body))
    }

    /// Percent-encodes a path segment or query value.
    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
