import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// Browsers on other origins (`ORCH_CORS_ORIGINS`), over HTTP; ``BrowserCORSTests`` runs the
/// reference's JavaScript client in Chromium.
@Suite struct CORSTests {
    static let app = "http://app.example.com:8080"

    static func configuration(_ origins: String) throws -> ServerConfiguration {
        var configuration = TestServer.configuration()
        configuration.corsOrigins = try #require(CORSPolicy(parsing: origins))
        // A limit of 3 requests a minute for anonymous callers: preflights must not spend it.
        configuration.rateLimits = ServerConfiguration.defaultRateLimits.merging(["anonymous": 3]) { $1 }
        return configuration
    }

    static func preflight(_ api: APIClient, _ path: String, origin: String, method: String = "POST") async throws
        -> TestResponse
    {
        try await api.request(
            .options, path,
            headers: [
                .origin: origin, .accessControlRequestMethod: method,
                .accessControlRequestHeaders: "authorization, content-type",
            ])
    }

    @Test(arguments: TestBackend.all)
    func anAllowedOriginIsAnsweredPreflightsAndHeadersOnEveryResponse(backend: TestBackend) async throws {
        try await TestServer.withApp(try Self.configuration("https://other.example, \(Self.app)"), backend: backend) { api in
            // Ten preflights without a token, past the anonymous limit of 3: all 204.
            for _ in 0..<10 {
                let preflight = try await Self.preflight(api, "/dispatch", origin: Self.app)
                #expect(preflight.status == .noContent)
                #expect(preflight.headers[.accessControlAllowOrigin] == Self.app)
                let methods = Set((preflight.headers[.accessControlAllowMethods] ?? "").split(separator: ", ").map(String.init))
                #expect(methods.isSuperset(of: ["GET", "POST", "PUT", "PATCH", "DELETE"]))
                let allowed = (preflight.headers[.accessControlAllowHeaders] ?? "").lowercased()
                for header in ["authorization", "content-type", "idempotency-key", "x-request-id", "last-event-id"] {
                    #expect(allowed.contains(header), "\(header) in \(allowed)")
                }
                #expect(Int(preflight.headers[.accessControlMaxAge] ?? "") ?? 0 > 0)
                #expect(preflight.headers[.vary]?.contains("Origin") == true)
            }
            let token = try await api.adminToken()
            let dispatched = try await api.request(
                .post, "/dispatch", token: token, json: #"{"core_id":"browser"}"#, headers: [.origin: Self.app])
            #expect(dispatched.status == .accepted)
            #expect(dispatched.headers[.accessControlAllowOrigin] == Self.app)
            #expect(dispatched.headers[.vary]?.contains("Origin") == true)
            let exposed = (dispatched.headers[.accessControlExposeHeaders] ?? "").lowercased()
            for header in ["x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"] {
                #expect(exposed.contains(header), "\(header) in \(exposed)")
            }
            // Errors carry them too: a browser app must be able to read the envelope.
            let refused = try await api.request(.get, "/tasks/task-none", token: token, headers: [.origin: Self.app])
            #expect(refused.status == .notFound)
            #expect(refused.headers[.accessControlAllowOrigin] == Self.app)
            // Preflights were neither requests in the metrics nor 4xx.
            let metrics = try await api.request(.get, "/metrics", token: token)
            #expect(!metrics.text.contains(#"method="OPTIONS""#))
        }
    }

    @Test func anotherOriginGetsNoCORSHeaders() async throws {
        try await TestServer.withApp(try Self.configuration(Self.app)) { api in
            for origin in ["https://evil.example", "http://app.example.com", "http://app.example.com:8081"] {
                let preflight = try await Self.preflight(api, "/dispatch", origin: origin)
                #expect(preflight.headers[.accessControlAllowOrigin] == nil)
                #expect(preflight.headers[.accessControlAllowMethods] == nil)
                let token = try await api.adminToken()
                let response = try await api.request(.get, "/health", token: token, headers: [.origin: origin])
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
                #expect(response.headers[.accessControlExposeHeaders] == nil)
            }
        }
    }

    @Test func everyOriginWithAStarIsAnsweredWithItsOwnOrigin() async throws {
        try await TestServer.withApp(try Self.configuration("*")) { api in
            let preflight = try await Self.preflight(api, "/jobs/task-x/status", origin: "https://anything.example", method: "PUT")
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://anything.example")
            // Something that is not an origin is not one.
            let odd = try await Self.preflight(api, "/dispatch", origin: "null")
            #expect(odd.headers[.accessControlAllowOrigin] == nil)
        }
    }

    /// Without `ORCH_CORS_ORIGINS` nothing changes: OPTIONS is 405 and no response has CORS headers.
    @Test func withoutOriginsThereIsNoCORS() async throws {
        try await TestServer.withApp { api in
            let preflight = try await Self.preflight(api, "/dispatch", origin: Self.app)
            #expect(preflight.status == .methodNotAllowed)
            #expect(preflight.headers[.accessControlAllowOrigin] == nil)
            let response = try await api.request(.get, "/health", headers: [.origin: Self.app])
            #expect(response.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test(arguments: ["app.example.com", "https://app.example.com/", "ftp://x", "https://a.example/path", "https://"])
    func originsThatAreNotOriginsAreRefusedAtStart(text: String) {
        #expect(CORSPolicy(parsing: text) == nil)
    }
}
