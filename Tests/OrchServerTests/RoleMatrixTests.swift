import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import OrchModels
import OrchStore
import Testing

@testable import OrchServer

/// Every route the server has, called with no token and with each role: the route table is the
/// source, so a new route is covered without touching this test.
@Suite struct RoleMatrixTests {
    @Test func everyRouteEnforcesItsAccessRule() async throws {
        let configuration = TestServer.configuration()
        let store = try openStore(configuration.databaseURL)
        let routes = try await buildAPI(configuration, store: store, bus: EventBus(), logger: Logger(label: "test")).table.routes
        #expect(routes.count >= 7)
        try await TestServer.withApp(configuration, store: store) { api in
            let admin = try await api.adminToken()
            var tokens: [Role: String] = [.admin: admin]
            for role in [Role.viewer, .operator, .system] {
                tokens[role] = try await api.createUser("matrix_\(role.rawValue)", role: role, adminToken: admin).token
            }
            for route in routes {
                let path = route.path.replacingOccurrences(of: #"\{[^}]+\}"#, with: "matrix-missing", options: .regularExpression)
                let body = [.post, .put, .patch].contains(route.method) ? "{}" : nil
                guard case .role(let minimum) = route.access else {
                    let response = try await api.request(route.method, path, json: body)
                    #expect(![401, 403].contains(response.status.code), "\(route.method) \(route.path) is public")
                    continue
                }
                let anonymous = try await api.request(route.method, path, json: body)
                #expect(anonymous.status == .unauthorized, "\(route.method) \(route.path) without a token")
                for role in Role.allCases {
                    let response = try await api.request(route.method, path, token: tokens[role], json: body)
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
