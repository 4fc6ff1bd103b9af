import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct APITokenTests {
    static func create(
        _ api: APIClient, token: String, name: String = "machine", role: Role? = nil, expiresIn: Int? = nil
    ) async throws -> TestResponse {
        try await api.send(.post, "/auth/tokens", token: token, body: CreateAPITokenRequest(name: name, role: role, expiresIn: expiresIn))
    }

    @Test(arguments: TestBackend.all)
    func createUseListRevoke(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let response = try await Self.create(api, token: admin, name: "ci-runner", role: .operator, expiresIn: 86_400)
            #expect(response.status == .created, "\(response.text)")
            let created = try response.decode(CreatedAPIToken.self)
            #expect(created.token.hasPrefix("orch_") && created.token.count == 48)
            #expect(created.apiToken.role == .operator && created.apiToken.name == "ci-runner")
            #expect(created.token.hasPrefix(created.apiToken.prefix))
            let expires = try #require(created.apiToken.expiresAt)
            #expect(abs(expires.timeIntervalSinceNow - 86_400) < 60)

            // It authenticates like a login token, with its own role.
            let me = try await api.request(.get, "/auth/me", token: created.token)
            #expect(me.status == .ok)
            #expect(try me.decode(User.self).username == "admin")
            #expect(try await api.send(.post, "/dispatch", token: created.token, body: DispatchRequest(coreID: "tok")).status == .accepted)
            let users = try await api.request(.get, "/users", token: created.token)
            #expect(users.status == .forbidden)
            #expect(try users.error.code == "INSUFFICIENT_PERMISSIONS")

            // Listed without the secret; use is recorded.
            let list = try await api.request(.get, "/auth/tokens", token: admin)
            #expect(list.status == .ok)
            #expect(!list.text.contains(created.token) && !list.text.contains(APITokens.digest(created.token)))
            let listed = try list.decode(APITokenList.self)
            #expect(listed.totalTokens == 1 && listed.tokens.first?.tokenID == created.apiToken.tokenID)
            #expect(listed.tokens.first?.lastUsedAt != nil)

            // Revoked: refused at once, gone from the list.
            let revoke = try await api.request(.delete, "/auth/tokens/\(created.apiToken.tokenID)", token: admin)
            #expect(revoke.status == .noContent)
            let refused = try await api.request(.get, "/auth/me", token: created.token)
            #expect(refused.status == .unauthorized)
            #expect(try refused.error.code == "INVALID_TOKEN")
            #expect(try await api.request(.get, "/auth/tokens", token: admin).decode(APITokenList.self).totalTokens == 0)
            #expect(try await api.request(.delete, "/auth/tokens/\(created.apiToken.tokenID)", token: admin).status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func rolesCannotBeRaisedAndTokensCannotMintTokens(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (_, viewer) = try await api.createUser("token_viewer", role: .viewer, adminToken: admin)
            let (_, other) = try await api.createUser("token_other", role: .operator, adminToken: admin)
            let higher = try await Self.create(api, token: viewer, role: .operator)
            #expect(higher.status == .forbidden)
            #expect(try higher.error.code == "INSUFFICIENT_PERMISSIONS")
            let own = try await Self.create(api, token: viewer)
            #expect(own.status == .created)
            let token = try own.decode(CreatedAPIToken.self)
            #expect(token.apiToken.role == .viewer)
            #expect(try await Self.create(api, token: token.token).status == .forbidden)
            // An admin may give a machine the system role.
            #expect(try await Self.create(api, token: admin, role: .system).decode(CreatedAPIToken.self).apiToken.role == .system)

            // Others' tokens are invisible and cannot be revoked; the admin sees every token.
            #expect(try await api.request(.get, "/auth/tokens", token: other).decode(APITokenList.self).totalTokens == 0)
            #expect(try await api.request(.delete, "/auth/tokens/\(token.apiToken.tokenID)", token: other).status == .notFound)
            #expect(try await api.request(.get, "/auth/tokens", token: admin).decode(APITokenList.self).totalTokens == 2)

            for body in [#"{"name":""}"#, #"{"name":"x","expires_in":30}"#, #"{"name":"x","role":"root"}"#, #"{"name":5}"#, "[]"] {
                let bad = try await api.request(.post, "/auth/tokens", token: admin, json: body)
                #expect(bad.status == .badRequest, "\(body): \(bad.text)")
                #expect(try bad.error.code.hasSuffix("_ERROR") || bad.error.code.contains("PARAMETER"))
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func expiredTokensAndDemotedOwnersAreRefused(backend: TestBackend) async throws {
        try await TestServer.withServer(backend: backend) { api, parts in
            let admin = try await api.adminToken()
            let secret = APITokens.generate()
            try await parts.store.createAPIToken(
                APITokenRecord(
                    id: "tok-expired", userID: try await api.request(.get, "/auth/me", token: admin).decode(User.self).userID,
                    name: "old", role: .viewer, digest: APITokens.digest(secret), prefix: String(secret.prefix(12)),
                    createdAt: Date().addingTimeInterval(-7200), expiresAt: Date().addingTimeInterval(-3600)))
            let expired = try await api.request(.get, "/auth/me", token: secret)
            #expect(expired.status == .unauthorized)
            #expect(try expired.error.message.contains("expired"))
            #expect(try await api.request(.get, "/auth/me", token: "orch_forged").status == .unauthorized)

            let (user, second) = try await api.createUser("second_admin", role: .admin, adminToken: admin)
            let token = try await Self.create(api, token: second, role: .admin).decode(CreatedAPIToken.self).token
            #expect(try await api.request(.get, "/users", token: token).status == .ok)
            let demote = try await api.send(.patch, "/users/\(user.userID)", token: admin, body: UpdateUserRequest(role: .viewer))
            #expect(demote.status == .ok)
            #expect(try await api.request(.get, "/auth/me", token: token).status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.all)
    func apiTokensAreRateLimitedAsTheirRole(backend: TestBackend) async throws {
        try await TestServer.withApp(RateLimitTests.configuration(["viewer": 3, "admin": 100, "anonymous": 1000]), backend: backend) { api in
            let admin = try await api.adminToken()
            let machine = try await Self.create(api, token: admin, role: .viewer).decode(CreatedAPIToken.self).token
            for _ in 0..<3 {
                let response = try await api.request(.get, "/tasks", token: machine)
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-RateLimit-Limit")!] == "3")
            }
            let refused = try await api.request(.get, "/tasks", token: machine)
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.error.details["limit"] == 3)
            // The admin's own login token has the admin allowance.
            let own = try await api.request(.get, "/tasks", token: admin)
            #expect(own.status == .ok && own.headers[HTTPField.Name("X-RateLimit-Limit")!] == "100")
        }
    }

    @Test(arguments: TestBackend.all)
    func revokingClosesTheTokensStreams(backend: TestBackend) async throws {
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let admin = try await api.adminToken()
            let created = try await Self.create(api, token: admin, role: .viewer).decode(CreatedAPIToken.self)
            let stream = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(created.token)")])
            #expect(stream.status == 200)
            #expect(try await api.request(.delete, "/auth/tokens/\(created.apiToken.tokenID)", token: admin).status == .noContent)
            #expect(await stream.waitForEnd())
        }
    }
}
