import AsyncHTTPClient
import Foundation
import OrchModels
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile and careless clients against a real `orch serve` process over real sockets: floods,
/// oversized and malformed requests, slow and silent connections, and shutdown.
@Suite(.serialized) struct ConnectionTests {
    static let adminPassword = "connection-admin-password"

    /// A server on a fresh SQLite file with `environment` added.
    func startServer(_ environment: [String: String] = [:], descriptorLimit: Int? = nil) async throws -> (ServerProcess, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-conn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var env = [
            "ORCH_DATABASE_URL": "sqlite://\(directory.appendingPathComponent("conn.sqlite").path)",
            "ORCH_ADMIN_PASSWORD": Self.adminPassword, "ORCH_RATE_LIMITS": "admin=0,anonymous=0",
            "ORCH_LOG_LEVEL": "warning",
        ]
        env.merge(environment) { _, new in new }
        let environment = env
        let server = try await ServerProcess.start(environment: environment, descriptorLimit: descriptorLimit)
        return (server, directory)
    }

    func token(_ server: ServerProcess) async throws -> String {
        let response = try await HTTPClient.shared.json(
            .POST, "\(server.baseURL)/auth/login", body: #"{"username":"admin","password":"\#(Self.adminPassword)"}"#)
        return try Timestamp.makeDecoder().decode(LoginResponse.self, from: response.body).accessToken
    }

    /// One `GET /health` on a new connection (from `source` when given): its status, or `nil`
    /// when the connection was refused or not answered.
    func health(port: Int, source: String? = nil) async -> Int? {
        guard let connection = try? RawConnection(port: port, source: source) else { return nil }
        connection.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await connection.response(timeout: 10)?.httpStatus
    }

    /// Waits up to `timeout` for `condition`.
    func eventually(timeout: TimeInterval = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }

    // MARK: Floods

    /// More idle sockets than the process has descriptors: the server keeps running, keeps
    /// serving the connection it had, serves other addresses, and recovers when they go.
    @Test func descriptorFloodUnderALowLimitNeverStopsTheServer() async throws {
        let (server, directory) = try await startServer(["ORCH_HEADER_TIMEOUT": "30"], descriptorLimit: 256)
        defer { try? FileManager.default.removeItem(at: directory) }
        let kept = try RawConnection(port: server.port)
        kept.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await kept.response()?.httpStatus == 200)
        #expect(await health(port: server.port, source: "127.0.0.2") == 200)
        // Counted once the database's reader connections are open.
        let before = openDescriptors(of: server.pid)

        var flood: [RawConnection] = []
        var refusals = 0
        for _ in 0..<600 {
            guard let connection = try? RawConnection(port: server.port) else { continue }
            flood.append(connection)
        }
        // The excess was answered 503 and closed at once; the rest is held, silent.
        for connection in flood.prefix(600) {
            if let answer = await connection.response(timeout: 0.02), answer.httpStatus == 503 {
                #expect(answer.httpBody.contains(#""code":"SERVICE_UNAVAILABLE""#))
                refusals += 1
            }
        }
        #expect(refusals >= 600 - 256)
        #expect(server.isRunning)
        kept.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await kept.response()?.httpStatus == 200)
        // One address's silent sockets do not lock out another address.
        #expect(await health(port: server.port, source: "127.0.0.2") == 200)

        flood.removeAll()
        #expect(await eventually { openDescriptors(of: server.pid) <= before + 4 }, "\(openDescriptors(of: server.pid)) vs \(before)")
        #expect(await health(port: server.port) == 200)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    /// `ORCH_MAX_CONNECTIONS` refuses the connection beyond it with a 503 envelope while the
    /// ones it holds are served.
    @Test func connectionsBeyondTheCapAreRefusedAtAccept() async throws {
        let (server, directory) = try await startServer(["ORCH_MAX_CONNECTIONS": "20", "ORCH_MAX_ANONYMOUS_CONNECTIONS": "0"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let held = try (0..<20).map { _ in try RawConnection(port: server.port) }
        try await Task.sleep(for: .milliseconds(300))
        let extra = try RawConnection(port: server.port)
        let refused = try #require(await extra.response())
        #expect(refused.httpStatus == 503)
        #expect(refused.httpBody.contains(#""reason":"capacity""#))
        #expect(await extra.end(timeout: 5).closed)
        held[7].send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await held[7].response()?.httpStatus == 200)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    // MARK: Oversized and malformed requests

    /// A 1 MiB header gets 431 in the envelope, and the server's socket is released: the
    /// descriptor count comes back to where it was.
    @Test func oversizedHeadersGet431AndReleaseTheirSockets() async throws {
        let (server, directory) = try await startServer()
        defer { try? FileManager.default.removeItem(at: directory) }
        let before = openDescriptors(of: server.pid)
        let header = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n"
        let answers = await withTaskGroup(of: String.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    guard let connection = try? RawConnection(port: server.port) else { return "" }
                    await connection.sending(header)
                    return await connection.end(timeout: 10).text
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.httpStatus == 431 }, "\(answers.map { $0.prefix(40) })")
        #expect(answers.allSatisfy { $0.httpBody.contains(#""code":"VALIDATION_ERROR""#) && $0.contains("request_id") })
        // (A few descriptors of slack: the database may open a reader connection meanwhile.)
        #expect(await eventually { openDescriptors(of: server.pid) <= before + 4 }, "\(openDescriptors(of: server.pid)) vs \(before)")
        // A request line far over the limit too.
        let long = try RawConnection(port: server.port)
        long.send("GET /" + String(repeating: "b", count: 200_000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await long.end().text.httpStatus == 431)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    /// Unknown methods, garbage and bad framing get the envelope, never a bare answer.
    @Test func malformedRequestsGetTheEnvelope() async throws {
        let (server, directory) = try await startServer()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, Int)] = [
            ("BREW /health HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            ("\u{01}\u{02}garbage\r\n\r\n", 501),
            ("GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
            ("POST /dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        ]
        for (request, status) in cases {
            let connection = try RawConnection(port: server.port)
            connection.send(request)
            let (answer, closed) = await connection.end(timeout: 10)
            #expect(answer.httpStatus == status, "\(request.debugDescription): \(answer)")
            #expect(answer.httpBody.hasPrefix(#"{"error":{"code":"#), "\(answer)")
            #expect(closed)
        }
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    /// HTTP/1.0 without keep-alive is answered and closed; with `keep-alive` it stays open.
    @Test func http10WithoutKeepAliveIsClosedAfterItsResponse() async throws {
        let (server, directory) = try await startServer()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plain = try RawConnection(port: server.port)
        plain.send("GET /health HTTP/1.0\r\n\r\n")
        let (answer, closed) = await plain.end(timeout: 5)
        #expect(answer.httpStatus == 200)
        #expect(answer.lowercased().contains("connection: close"))
        #expect(closed)

        let kept = try RawConnection(port: server.port)
        kept.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(await kept.response()?.httpStatus == 200)
        kept.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(await kept.response()?.httpStatus == 200)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    // MARK: Timeouts

    /// Silent, slowloris, half-sent and idle connections are ended by their timeouts; an event
    /// stream and a long poll are not idle.
    @Test func slowSilentAndIdleConnectionsTimeOut() async throws {
        let (server, directory) = try await startServer([
            "ORCH_HEADER_TIMEOUT": "1", "ORCH_BODY_TIMEOUT": "1", "ORCH_IDLE_TIMEOUT": "2", "ORCH_SSE_HEARTBEAT": "1",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = try await token(server)

        let silent = try RawConnection(port: server.port)
        #expect(await silent.end(timeout: 5) == ("", true))

        let slowloris = try RawConnection(port: server.port)
        slowloris.send("GET /health HTTP/1.1\r\nHost: x\r\n")
        let dripping = Task {
            for _ in 0..<20 where slowloris.send("X-Drip: 1\r\n") { try? await Task.sleep(for: .milliseconds(300)) }
        }
        let (slowAnswer, slowClosed) = await slowloris.end(timeout: 5)
        dripping.cancel()
        #expect(slowAnswer.httpStatus == 408 && slowAnswer.httpBody.contains(#""code":"TIMEOUT""#), "\(slowAnswer)")
        #expect(slowClosed)

        let halfBody = try RawConnection(port: server.port)
        halfBody.send(
            "POST /dispatch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"coreId\":")
        let (bodyAnswer, bodyClosed) = await halfBody.end(timeout: 5)
        #expect(bodyAnswer.httpStatus == 408 && bodyAnswer.httpBody.contains(#""code":"TIMEOUT""#), "\(bodyAnswer)")
        #expect(bodyClosed)

        let idle = try RawConnection(port: server.port)
        idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await idle.response()?.httpStatus == 200)
        let (rest, idleClosed) = await idle.end(timeout: 6)
        #expect(rest.isEmpty && idleClosed)

        // Longer than every timeout: a stream keeps going, a long poll answers when it is due.
        let stream = try RawConnection(port: server.port)
        stream.send("GET /sse/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n")
        let poll = try RawConnection(port: server.port)
        let claim = #"{"worker_id":"w1","wait":4}"#
        poll.send(
            "POST /cores/timeouts/claim HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(claim.utf8.count)\r\n\r\n\(claim)")
        let (streamed, streamClosed) = await stream.end(timeout: 4.5)
        #expect(!streamClosed && streamed.contains("heartbeat"))
        #expect(await poll.response(timeout: 5)?.httpStatus == 204)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    // MARK: Shutdown

    /// SIGTERM is bounded by `ORCH_SHUTDOWN_GRACE`: waiting claims answer 204, lock waiters
    /// 503, an unfinished upload is dropped, and the process exits 0.
    @Test func shutdownIsBoundedByTheGrace() async throws {
        let (server, directory) = try await startServer(["ORCH_SHUTDOWN_GRACE": "2", "ORCH_BODY_TIMEOUT": "600"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = try await token(server)
        let holder = try await HTTPClient.shared.json(
            .POST, "\(server.baseURL)/locks", token: token, body: #"{"resource":"shared","owner":"holder","ttl":600}"#)
        #expect(holder.status == 200)

        func request(_ path: String, _ body: String) throws -> RawConnection {
            let connection = try RawConnection(port: server.port)
            connection.send(
                "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return connection
        }
        let claims = try (0..<20).map { _ in try request("/cores/shutdown/claim", #"{"worker_id":"w","wait":60}"#) }
        let waiters = try (0..<10).map { try request("/locks", #"{"resource":"shared","owner":"o\#($0)","ttl":60,"timeout":300}"#) }
        let upload = try RawConnection(port: server.port)
        upload.send(
            "POST /dispatch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"coreId\":")
        try await Task.sleep(for: .milliseconds(500))

        let started = Date()
        kill(server.pid, SIGTERM)
        for claim in claims { #expect(await claim.response()?.httpStatus == 204) }
        for waiter in waiters {
            let answer = await waiter.response()
            #expect(answer?.httpStatus == 503 && answer?.httpBody.contains("SERVICE_UNAVAILABLE") == true)
        }
        #expect(await upload.end(timeout: 10).closed)
        #expect(await server.stopped(signal: 0) == 0)
        #expect(Date().timeIntervalSince(started) < 8, "shutdown took \(Date().timeIntervalSince(started)) s")
    }
}
