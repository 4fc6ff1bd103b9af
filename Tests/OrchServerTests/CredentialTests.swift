import Crypto
import Foundation
import OrchCore
import HTTPTypes
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// No stale credential works: tokens from before a password reset, a deactivation or a role
/// change, API tokens of a deactivated or demoted owner, tokens from the future, unknown critical
/// headers; and failed logins lock out only the (username, address) pair.
@Suite struct CredentialTests {
    @Test(arguments: TestBackend.all)
    func passwordResetEndsEveryExistingSession(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, old) = try await api.createUser("resetme", role: .operator, adminToken: admin)
            #expect(try await api.request(.get, "/auth/me", token: old).status == .ok)
            let reset = try await api.request(
                .patch, "/users/\(user.userID)", token: admin, json: #"{"password":"brand-new-password"}"#)
            #expect(reset.status == .ok)
            let refused = try await api.request(.get, "/auth/me", token: old)
            #expect(refused.status == .unauthorized)
            #expect(try refused.error.code == "INVALID_TOKEN")
            // Nor can the old session mint a long-lived token.
            let mint = try await api.request(.post, "/auth/tokens", token: old, json: #"{"name":"backdoor"}"#)
            #expect(mint.status == .unauthorized)
            let fresh = try await api.login("resetme", "brand-new-password")
            #expect(try await api.request(.get, "/auth/me", token: fresh).status == .ok)
        }
    }

    @Test(arguments: TestBackend.all)
    func deactivationRevokesJWTsAndAPITokensForGood(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, jwt) = try await api.createUser("leaver", role: .operator, adminToken: admin)
            let apiToken = try await api.request(.post, "/auth/tokens", token: jwt, json: #"{"name":"ci"}"#)
                .decode(CreatedAPIToken.self).token
            #expect(try await api.request(.get, "/tasks", token: apiToken).status == .ok)
            for active in [false, true] {
                let patch = try await api.request(
                    .patch, "/users/\(user.userID)", token: admin, json: #"{"is_active":\#(active)}"#)
                #expect(patch.status == .ok)
            }
            // Reactivated, the account works again with a new login, but nothing issued before.
            #expect(try await api.request(.get, "/auth/me", token: jwt).status == .unauthorized)
            #expect(try await api.request(.get, "/tasks", token: apiToken).status == .unauthorized)
            let fresh = try await api.login("leaver", "password-leaver")
            #expect(try await api.request(.get, "/auth/me", token: fresh).status == .ok)
            let listed = try await api.request(.get, "/auth/tokens?user_id=\(user.userID)", token: admin)
                .decode(APITokenList.self)
            #expect(listed.tokens.isEmpty)
        }
    }

    @Test(arguments: TestBackend.all)
    func aDemotedAdminsAdminTokenStaysRevokedAfterRepromotion(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, jwt) = try await api.createUser("deputy", role: .admin, adminToken: admin)
            let adminScoped = try await api.request(.post, "/auth/tokens", token: jwt, json: #"{"name":"ops","role":"admin"}"#)
                .decode(CreatedAPIToken.self).token
            let viewerScoped = try await api.request(.post, "/auth/tokens", token: jwt, json: #"{"name":"scrape","role":"viewer"}"#)
                .decode(CreatedAPIToken.self).token
            #expect(try await api.request(.get, "/users", token: adminScoped).status == .ok)
            for role in ["operator", "admin"] {
                let patch = try await api.request(.patch, "/users/\(user.userID)", token: admin, json: #"{"role":"\#(role)"}"#)
                #expect(patch.status == .ok)
            }
            #expect(try await api.request(.get, "/users", token: adminScoped).status == .unauthorized)
            // A token within the lower role was not revoked.
            #expect(try await api.request(.get, "/tasks", token: viewerScoped).status == .ok)
        }
    }

    @Test(arguments: TestBackend.all)
    func aRoleChangeEndsSessionsAndTheNewLoginCarriesTheNewRole(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, old) = try await api.createUser("promoted", role: .viewer, adminToken: admin)
            #expect(try await api.request(.get, "/users", token: old).status == .forbidden)
            _ = try await api.send(.patch, "/users/\(user.userID)", token: admin, body: UpdateUserRequest(role: .admin))
            #expect(try await api.request(.get, "/users", token: old).status == .unauthorized)
            let fresh = try await api.login("promoted", "password-promoted")
            #expect(try await api.request(.get, "/users", token: fresh).status == .ok)
            // Changing only the email ends nothing.
            _ = try await api.request(.patch, "/users/\(user.userID)", token: admin, json: #"{"email":"p2@example.com"}"#)
            #expect(try await api.request(.get, "/users", token: fresh).status == .ok)
        }
    }

    /// HS256 JWT over `header` and `claims`, signed with the test secret.
    static func sign(header: [String: Any], claims: [String: Any]) throws -> String {
        func part(_ object: [String: Any]) throws -> String {
            try JSONSerialization.data(withJSONObject: object).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let input = try part(header) + "." + part(claims)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(input.utf8), using: SymmetricKey(data: Data(TestServer.jwtSecret.utf8)))
        let signature = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return input + "." + signature
    }

    @Test(arguments: TestBackend.all)
    func tokensFromTheFutureOrWithUnknownCriticalHeadersAreRefused(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let me = try await api.request(.get, "/auth/me", token: admin).decode(User.self)
            let now = Int(Date().timeIntervalSince1970)
            func claims(iat: Int, nbf: Int? = nil) -> [String: Any] {
                var claims: [String: Any] = [
                    "sub": me.userID, "role": "admin", "iat": iat, "exp": now + 600, "iss": "orch-next", "jti": "jwt-x",
                ]
                if let nbf { claims["nbf"] = nbf }
                return claims
            }
            let header: [String: Any] = ["alg": "HS256", "typ": "JWT"]
            let cases: [(String, HTTPResponse.Status)] = [
                (try Self.sign(header: header, claims: claims(iat: now)), .ok),
                (try Self.sign(header: header, claims: claims(iat: now + 30)), .ok),  // within the leeway
                (try Self.sign(header: header, claims: claims(iat: now + 3600)), .unauthorized),
                (try Self.sign(header: header, claims: claims(iat: now, nbf: now + 3600)), .unauthorized),
                (try Self.sign(header: header.merging(["crit": ["exp"]]) { $1 }, claims: claims(iat: now)), .unauthorized),
            ]
            for (token, status) in cases {
                let response = try await api.request(.get, "/auth/me", token: token)
                #expect(response.status == status, "\(token): \(response.text)")
                if status == .unauthorized { #expect(try response.error.code == "INVALID_TOKEN") }
            }
        }
    }

    /// Behind a trusted proxy, failed logins lock the username out from the guessing client's
    /// address only; its owner logs in from another address.
    @Test(arguments: TestBackend.all)
    func failedLoginsLockOutOnlyTheUsernameAndAddressPair(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.trustedProxies = try #require(AddressPatterns(parsing: "127.0.0.1,::1"))
        // A lockout that outlasts the attempts below however slowly a loaded machine answers
        // them (by default it starts at 1 s).
        configuration.loginThrottle = LoginThrottle(firstLockout: 120)
        try await TestServer.withServer(configuration, backend: backend, testing: .live) { api, _ in
            let wrong = #"{"username":"admin","password":"wrong-password"}"#
            var statuses: [Int] = []
            for _ in 0..<9 {
                let response = try await api.request(
                    .post, "/auth/login", json: wrong, headers: [.xForwardedFor: "203.0.113.9"])
                statuses.append(response.status.code)
            }
            #expect(statuses.last == 429)
            let right = #"{"username":"admin","password":"\#(TestServer.adminPassword)"}"#
            let attacker = try await api.request(.post, "/auth/login", json: right, headers: [.xForwardedFor: "203.0.113.9"])
            #expect(attacker.status == .tooManyRequests)
            let owner = try await api.request(
                .post, "/auth/login", json: right, headers: [.xForwardedFor: "198.51.100.4, 127.0.0.1"])
            #expect(owner.status == .ok)
        }
    }

    @Test func forwardedForIsReadOnlyFromTrustedProxies() throws {
        let proxies = try #require(AddressPatterns(parsing: "10.0.0.0/8, fd00::/8"))
        #expect(proxies.clientAddress(peer: "192.0.2.1", forwardedFor: ["203.0.113.5"]) == "192.0.2.1")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: ["203.0.113.5"]) == "203.0.113.5")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: ["6.6.6.6, 203.0.113.5, 10.9.9.9"]) == "203.0.113.5")
        #expect(proxies.clientAddress(peer: "fd00::1", forwardedFor: ["198.51.100.7"]) == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: ["not-an-ip"]) == "10.1.2.3")
        #expect(proxies.contains("::ffff:10.0.0.1"))
        #expect(!proxies.contains("11.0.0.1"))
        #expect(AddressPatterns(parsing: "10.0.0.0/33") == nil && AddressPatterns(parsing: "proxy.local") == nil)
    }
}
