import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// The served document describes exactly the routes the router has, with their access rules.
/// (scripts/contract.sh checks it further with openapi-spec-validator and schemathesis.)
@Suite struct OpenAPITests {
    @Test(arguments: TestBackend.all)
    func everyRouteIsDocumentedAndEveryDocumentedRouteExists(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, server in
            let response = try await api.request(.get, "/openapi.json")
            #expect(response.status == .ok)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            #expect(document["openapi"] as? String == "3.0.3")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, methods) in paths {
                for method in methods.keys { documented.insert("\(method.uppercased()) \(path)") }
            }
            let routes = Set(server.routes.routes.map { "\($0.method.rawValue) \($0.path)" })
            #expect(routes.subtracting(documented).isEmpty, "undocumented: \(routes.subtracting(documented).sorted())")
            #expect(documented.subtracting(routes).isEmpty, "no such route: \(documented.subtracting(routes).sorted())")

            for route in server.routes.routes {
                let operation = try #require(paths[route.path]?[route.method.rawValue.lowercased()] as? [String: Any])
                let responses = try #require(operation["responses"] as? [String: Any])
                #expect(responses["429"] != nil, "\(route.method) \(route.path) lacks 429")
                let security = operation["security"] as? [[String: Any]]
                switch route.access {
                case .public:
                    #expect(security?.isEmpty == true)
                    #expect(operation["x-required-role"] == nil)
                case .role(let role):
                    #expect(security?.first?["bearer"] != nil)
                    #expect(operation["x-required-role"] as? String == role.rawValue)
                    #expect((operation["description"] as? String)?.contains(role.rawValue) == true)
                    #expect(responses["401"] != nil && responses["403"] != nil)
                }
                if operation["requestBody"] != nil { #expect(responses["400"] != nil && responses["413"] != nil) }
                if route.path.contains("{") { #expect(responses["404"] != nil) }
            }
            // Every schema a document references exists.
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            let text = String(buffer: response.body)
            for match in text.matches(of: /#\/components\/schemas\/([A-Za-z]+)/) {
                #expect(schemas[String(match.1)] != nil, "missing schema \(match.1)")
            }
        }
    }
}

/// Path parameters arrive percent-encoded from clients that encode reserved characters
/// (schemathesis found `/cores/a%3Ab/claim` refused): they are decoded before use.
@Suite struct PathParameterTests {
    @Test(arguments: TestBackend.all)
    func percentEncodedPathParametersAreDecoded(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let dispatched = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "ns:core.1"))
            #expect(dispatched.status == .accepted)
            let claim = try await api.send(.post, "/cores/ns%3Acore.1/claim", token: token, body: ClaimRequest(workerID: "w"))
            #expect(claim.status == .ok)
            #expect(try claim.decode(ClaimResponse.self).tasks.first?.task.coreID == "ns:core.1")
            let lock = try await api.send(
                .post, "/locks", token: token, body: AcquireLockRequest(resource: "files/a b", owner: "me", ttl: 60))
            #expect(lock.status == .ok)
            let release = try await api.request(.delete, "/locks/files%2Fa%20b?owner=me", token: token)
            #expect(release.status == .ok)
            #expect(try release.decode(LockRelease.self).resource == "files/a b")
        }
    }
}
