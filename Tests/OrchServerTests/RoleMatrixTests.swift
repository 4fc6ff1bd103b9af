import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// Every route the server has, called with no token and with each role: the route table is the
/// source, so a new route is covered without touching this test.
@Suite struct RoleMatrixTests {
    @Test(arguments: TestBackend.all)
    func everyRouteEnforcesItsAccessRule(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, server in
            let routes = server.routes.routes
            #expect(routes.count >= 7)
            /// Calls a route; a stream that is let in is closed from the server's side at once.
            func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: String? = nil) async throws
                -> TestResponse
            {
                try await withThrowingTaskGroup(of: TestResponse?.self) { group in
                    group.addTask { try await api.request(method, path, token: token, json: json) }
                    group.addTask {
                        while !Task.isCancelled {
                            server.bus.closeSubscriptions(.shutdown) { _ in true }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        return nil
                    }
                    let response = try await group.next()!
                    group.cancelAll()
                    return response!
                }
            }
            let admin = try await api.adminToken()
            var tokens: [Role: String] = [.admin: admin]
            for role in [Role.viewer, .operator, .system] {
                tokens[role] = try await api.createUser("matrix_\(role.rawValue)", role: role, adminToken: admin).token
            }
            for route in routes {
                let path = route.path.replacingOccurrences(of: #"\{[^}]+\}"#, with: "matrix-missing", options: .regularExpression)
                let body = [.post, .put, .patch].contains(route.method) ? "{}" : nil
                guard case .role(let minimum) = route.access else {
                    let response = try await call(route.method, path, json: body)
                    #expect(![401, 403].contains(response.status.code), "\(route.method) \(route.path) is public")
                    continue
                }
                let anonymous = try await call(route.method, path, json: body)
                #expect(anonymous.status == .unauthorized, "\(route.method) \(route.path) without a token")
                for role in Role.allCases {
                    let response = try await call(route.method, path, token: tokens[role], json: body)
                    if role.satisfies(minimum) {
                        #expect(![401, 403].contains(response.status.code), "\(route.method) \(route.path) as \(role)")
                    } else {
                        #expect(response.status == .forbidden, "\(route.method) \(route.path) as \(role)")
                        #expect(try response.error.code == "INSUFFICIENT_PERMISSIONS")
                    }
                }
            }
        }
    }
}
