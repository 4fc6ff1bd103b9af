import Foundation
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct RestartTests {
    /// Without ORCH_JWT_SECRET the generated secret is stored, so a token survives a restart,
    /// and so do the users.
    @Test(arguments: TestBackend.all)
    func restartOnTheSameFileKeepsUsersAndTheGeneratedSecret(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            var configuration = TestServer.configuration(database: database)
            configuration.jwtSecret = nil

            let firstRun = TokenBox()
            try await TestServer.withApp(configuration, backend: backend) { api in
                let admin = try await api.adminToken()
                let (_, token) = try await api.createUser("survivor", role: .operator, adminToken: admin)
                firstRun.set(token)
            }
            configuration.adminPassword = "a-different-password"
            try await TestServer.withApp(configuration, backend: backend) { api in
                let token = try #require(firstRun.get())
                let me = try await api.request(.get, "/auth/me", token: token)
                #expect(me.status == .ok)
                #expect(try me.decode(User.self).username == "survivor")
                // The first admin is not re-created or changed by a restart.
                _ = try await api.login("admin", TestServer.adminPassword)
            }
        }
    }
}

final class TokenBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ value: String) { lock.withLock { self.value = value } }
    func get() -> String? { lock.withLock { value } }
}
