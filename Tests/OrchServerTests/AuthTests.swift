import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct AuthTests {
    @Test(arguments: TestBackend.all)
    func loginAnswersTheReferenceBodyAndSetsLastLogin(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let response = try await api.send(.post, "/auth/login", body: LoginRequest(username: "admin", password: TestServer.adminPassword))
            #expect(response.status == .ok)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            #expect(Set(object.keys) == ["access_token", "token_type", "expires_in", "user"])
            let body = try response.decode(LoginResponse.self)
            #expect(body.tokenType == "bearer")
            #expect(body.expiresIn == 3600)
            #expect(body.user.username == "admin" && body.user.role == .admin)
            #expect(body.user.userID.hasPrefix("user-"))

            let me = try await api.request(.get, "/auth/me", token: body.accessToken)
            #expect(me.status == .ok)
            let user = try me.decode(User.self)
            #expect(user.userID == body.user.userID)
            #expect(user.lastLogin != nil)
        }
    }

    @Test(arguments: TestBackend.all)
    func tokenCarriesPinnedAlgorithmAndStandardClaims(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let token = try await api.adminToken()
            let parts = token.split(separator: ".").map(String.init)
            #expect(parts.count == 3)
            let headerData = try #require(Data(base64URLEncoded: parts[0]))
            let claimsData = try #require(Data(base64URLEncoded: parts[1]))
            let header = try #require(try JSONSerialization.jsonObject(with: headerData) as? [String: Any])
            #expect(header["alg"] as? String == "HS256")
            let claims = try #require(try JSONSerialization.jsonObject(with: claimsData) as? [String: Any])
            for claim in ["sub", "role", "iat", "exp", "iss", "jti"] {
                #expect(claims[claim] != nil, "missing claim \(claim)")
            }
            #expect(claims["iss"] as? String == "orch-next")
            let iat = try #require(claims["iat"] as? Double)
            let exp = try #require(claims["exp"] as? Double)
            #expect(exp - iat == 3600)
        }
    }

    @Test(arguments: TestBackend.all)
    func wrongPasswordAndUnknownUserGetTheSameAnswer(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let wrongPassword = try await api.send(.post, "/auth/login", body: LoginRequest(username: "admin", password: "not-the-password"))
            let unknownUser = try await api.send(.post, "/auth/login", body: LoginRequest(username: "nobody", password: "not-the-password"))
            #expect(wrongPassword.status == .unauthorized)
            #expect(unknownUser.status == .unauthorized)
            let first = try wrongPassword.error
            let second = try unknownUser.error
            #expect(first.code == "AUTHENTICATION_REQUIRED")
            #expect(first.code == second.code && first.message == second.message && first.details == second.details)
        }
    }

    @Test(arguments: TestBackend.all)
    func deactivatedUserCannotLogInAndTheirTokenStopsWorking(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, token) = try await api.createUser("temp_user", role: .operator, adminToken: admin)
            #expect(try await api.request(.get, "/auth/me", token: token).status == .ok)
            let patch = try await api.send(.patch, "/users/\(user.userID)", token: admin, body: UpdateUserRequest(isActive: false))
            #expect(patch.status == .ok)
            let refused = try await api.request(.get, "/auth/me", token: token)
            #expect(refused.status == .unauthorized)
            #expect(try refused.error.code == "INVALID_TOKEN")
            let login = try await api.send(.post, "/auth/login", body: LoginRequest(username: "temp_user", password: "password-temp_user"))
            #expect(login.status == .unauthorized)
        }
    }


    @Test(arguments: [
        ("Bearer abc.def", "abc.def"), ("bearer abc", "abc"), ("BEARER   abc  ", "abc"), ("Bearer\tabc", "abc"),
        ("Bearer a b", "a b"), ("Bearer", nil), ("Bearer   ", nil), ("Basic abc", nil), ("Bearerabc", nil),
        ("Bearex abc", nil), ("", nil), (" Bearer abc", nil), ("Béarer abc", nil),
    ] as [(String, String?)])
    func bearerTokenIsTheTextAfterTheScheme(header: String, token: String?) {
        #expect(Authenticator.bearerToken(header) == token)
    }

    @Test(arguments: TestBackend.all)
    func missingOrNonBearerCredentialsAreAuthenticationRequired(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            for headers: HTTPFields in [[:], [.authorization: "Basic YWRtaW46eA=="], [.authorization: "Bearer "]] {
                let response = try await api.request(.get, "/auth/me", headers: headers)
                #expect(response.status == .unauthorized)
                #expect(try response.error.code == "AUTHENTICATION_REQUIRED")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
        }
    }

    @Test(arguments: ForgedToken.allCases)
    func forgedTokensAreInvalid(kind: ForgedToken) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let genuine = try await api.adminToken()
                let response = try await api.request(.get, "/auth/me", token: kind.make(from: genuine))
                #expect(response.status == .unauthorized)
                #expect(try response.error.code == "INVALID_TOKEN")
            }
        }
    }
}

/// Ways of forging a token from a genuine one.
enum ForgedToken: String, CaseIterable, Sendable {
    case tamperedPayload, expired, algNone, hs512, wrongIssuer, wrongSecret, garbage

    func make(from genuine: String) -> String {
        let parts = genuine.split(separator: ".").map(String.init)
        var claims = (try? JSONSerialization.jsonObject(with: Data(base64URLEncoded: parts[1])!) as? [String: Any]) ?? [:]
        switch self {
        case .tamperedPayload:
            claims["sub"] = "user-someone-else"
            return [parts[0], Self.encode(claims), parts[2]].joined(separator: ".")
        case .expired:
            claims["iat"] = Date().timeIntervalSince1970.rounded() - 7200
            claims["exp"] = Date().timeIntervalSince1970.rounded() - 3600
            return Self.sign(header: ["alg": "HS256", "typ": "JWT"], claims: claims, secret: TestServer.jwtSecret, sha512: false)
        case .algNone:
            return [Self.encode(["alg": "none", "typ": "JWT"]), Self.encode(claims), ""].joined(separator: ".")
        case .hs512:
            return Self.sign(header: ["alg": "HS512", "typ": "JWT"], claims: claims, secret: TestServer.jwtSecret, sha512: true)
        case .wrongIssuer:
            claims["iss"] = "someone-else"
            return Self.sign(header: ["alg": "HS256", "typ": "JWT"], claims: claims, secret: TestServer.jwtSecret, sha512: false)
        case .wrongSecret:
            return Self.sign(header: ["alg": "HS256", "typ": "JWT"], claims: claims, secret: "another-secret-0123456789abcdefghijkl", sha512: false)
        case .garbage:
            return "not.a.token"
        }
    }

    static func encode(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func sign(header: [String: Any], claims: [String: Any], secret: String, sha512: Bool) -> String {
        let input = encode(header) + "." + encode(claims)
        let key = SymmetricKey(data: Data(secret.utf8))
        let signature: Data =
            sha512
            ? Data(HMAC<SHA512>.authenticationCode(for: Data(input.utf8), using: key))
            : Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: key))
        let encoded = signature.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return input + "." + encoded
    }
}

@Suite struct LoginThrottleServerTests {
    /// Failures for one username are slowed, then refused with 429 (also with the right
    /// password, until the lockout passes); another user is unaffected; the lockout is short.
    @Test(arguments: TestBackend.all)
    func repeatedFailuresAreSlowedThenRefused(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            _ = try await api.createUser("target", role: .viewer, adminToken: admin)
            var statuses: [Int] = []
            let started = ContinuousClock.now
            for _ in 0..<9 {
                let response = try await api.send(.post, "/auth/login", body: LoginRequest(username: "target", password: "wrong-password"))
                statuses.append(response.status.code)
            }
            let elapsed = ContinuousClock.now - started
            #expect(statuses == [401, 401, 401, 401, 401, 401, 401, 401, 429])
            #expect(elapsed >= .milliseconds(3500), "failures 3 to 7 are held 0.25 to 1.25 s")
            let refused = try await api.send(.post, "/auth/login", body: LoginRequest(username: "target", password: "password-target"))
            #expect(refused.status == .tooManyRequests)
            #expect(try refused.error.code == "RATE_LIMIT_EXCEEDED")
            #expect(refused.headers[.retryAfter] == "1")
            try await Task.sleep(for: .seconds(1.1))
            // The lockout passed: the right password works (slowly) and clears the count.
            _ = try await api.login("target", "password-target")
        }
    }
}
