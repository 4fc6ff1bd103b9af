import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct RateLimitTests {
    static func configuration(_ limits: [String: Int]) -> ServerConfiguration {
        var configuration = TestServer.configuration()
        configuration.rateLimits = ServerConfiguration.defaultRateLimits.merging(limits) { $1 }
        return configuration
    }

    @Test(arguments: TestBackend.all)
    func everyResponseCarriesTheHeadersErrorsIncluded(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(["admin": 50, "anonymous": 1000]), backend: backend) { api in
            let token = try await api.adminToken()
            let first = try await api.request(.get, "/tasks", token: token)
            #expect(first.headers[HTTPField.Name("X-RateLimit-Limit")!] == "50")
            #expect(first.headers[HTTPField.Name("X-RateLimit-Window")!] == "60")
            #expect(first.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "49")
            let reset = try #require(first.headers[HTTPField.Name("X-RateLimit-Reset")!].flatMap(Int.init))
            #expect(reset >= Int(Date().timeIntervalSince1970))
            let missing = try await api.request(.get, "/no/such/route", token: token)
            #expect(missing.status == .notFound)
            #expect(missing.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "48")
            let invalid = try await api.request(.post, "/dispatch", token: token, json: "{}")
            #expect(invalid.status == .badRequest)
            #expect(invalid.headers[HTTPField.Name("X-RateLimit-Limit")!] == "50")
        }
    }

    @Test(arguments: TestBackend.all)
    func overTheLimitIs429WithRetryAfterAndTheReferenceBody(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(["viewer": 3, "anonymous": 1000]), backend: backend) { api in
            let admin = try await api.adminToken()
            let (_, viewer) = try await api.createUser("limited", role: .viewer, adminToken: admin)
            let (_, other) = try await api.createUser("other_viewer", role: .viewer, adminToken: admin)
            for _ in 0..<3 { #expect(try await api.request(.get, "/tasks", token: viewer).status == .ok) }
            let refused = try await api.request(.get, "/tasks", token: viewer)
            #expect(refused.status == .tooManyRequests)
            let error = try refused.error
            #expect(error.code == "RATE_LIMIT_EXCEEDED" && error.message == "Rate limit exceeded")
            #expect(error.details["limit"] == 3 && error.details["window"] == 60)
            let retryAfter = try #require(refused.headers[.retryAfter].flatMap(Int.init))
            // About 20 s from the window's first request (a second or two went by since, on a loaded machine).
            #expect((17...20).contains(retryAfter))
            #expect(error.details["retry_after"] == .int(Int64(retryAfter)))
            #expect(refused.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "0")
            // Another user of the same role has their own allowance.
            #expect(try await api.request(.get, "/tasks", token: other).status == .ok)
        }
    }

    /// GCRA gives one request back every window/limit seconds: after the advised Retry-After
    /// the same user is served again. Refusals are counted by role in the metrics.
    @Test(arguments: TestBackend.all)
    func theAllowanceComesBackAfterRetryAfter(backend: TestBackend) async throws {
        try await TestServer.withServer(Self.configuration(["viewer": 30, "anonymous": 1000]), backend: backend) { api, parts in
            let admin = try await api.adminToken()
            let (_, viewer) = try await api.createUser("recovering", role: .viewer, adminToken: admin)
            var refused: TestResponse?
            for _ in 0..<40 {
                let response = try await api.request(.get, "/tasks", token: viewer)
                if response.status == .tooManyRequests {
                    refused = response
                    break
                }
            }
            let retryAfter = try #require(refused?.headers[.retryAfter].flatMap(Int.init))
            #expect((1...2).contains(retryAfter))
            try await Task.sleep(for: .milliseconds(retryAfter * 1000 + 200))
            #expect(try await api.request(.get, "/tasks", token: viewer).status == .ok)
            let metrics = try Exposition(String(decoding: parts.metrics.render(), as: UTF8.self))
            #expect(metrics.value("orch_rate_limited_requests_total", ["role": "viewer"]) == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func unauthenticatedCallsAreLimitedUnderAnonymous(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(["anonymous": 2, "admin": 0]), backend: backend) { api in
            #expect(try await api.request(.get, "/health").status == .ok)
            #expect(try await api.request(.get, "/health").status == .ok)
            let refused = try await api.request(.get, "/health")
            #expect(refused.status == .tooManyRequests)
            // A forged token does not escape the anonymous limit.
            #expect(try await api.request(.get, "/health", token: "not.a.token").status == .tooManyRequests)
        }
    }

    @Test(arguments: TestBackend.all)
    func zeroMeansUnlimitedWithoutHeaders(backend: TestBackend) async throws {
        try await TestServer.withApp(Self.configuration(["admin": 0, "anonymous": 1000]), backend: backend) { api in
            let token = try await api.adminToken()
            for _ in 0..<20 {
                let response = try await api.request(.get, "/tasks", token: token)
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-RateLimit-Limit")!] == nil)
            }
        }
    }
}
