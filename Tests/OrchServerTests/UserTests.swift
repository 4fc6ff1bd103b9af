import Foundation
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct UserTests {
    @Test(arguments: TestBackend.all)
    func createUserAnswers201WithTheReferenceFields(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let response = try await api.request(
                .post, "/users", token: admin,
                json: #"{"username":"new_user","email":"new_user@example.com","password":"secure_password_123","role":"operator","metadata":{"department":"engineering","team":"platform"}}"#)
            #expect(response.status == .created)
            let user = try response.decode(User.self)
            #expect(user.userID.hasPrefix("user-"))
            #expect(user.username == "new_user" && user.email == "new_user@example.com" && user.role == .operator)
            #expect(user.isActive)
            #expect(user.metadata == ["department": "engineering", "team": "platform"])
            #expect(!response.text.contains("password"))
            let fetched = try await api.request(.get, "/users/\(user.userID)", token: admin)
            #expect(try fetched.decode(User.self) == user)
            // The new user can log in with the password given.
            _ = try await api.login("new_user", "secure_password_123")
        }
    }

    /// A password's length is in characters (code points), as the document's maxLength says:
    /// 72 characters of three bytes each are allowed, and every one of them counts at login,
    /// although bcrypt itself reads only 72 bytes.
    @Test(arguments: TestBackend.all)
    func aPasswordOfSeventyTwoMultibyteCharactersCountsToItsLastCharacter(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let password = String(repeating: "€", count: 71) + "a"
            let created = try await api.send(
                .post, "/users", token: admin,
                body: CreateUserRequest(username: "euro", email: "euro@example.com", password: password, role: .viewer))
            #expect(created.status == .created)
            _ = try await api.login("euro", password)
            let sameFirst72Bytes = String(repeating: "€", count: 71) + "b"
            let wrong = try await api.request(
                .post, "/auth/login", json: #"{"username":"euro","password":"\#(sameFirst72Bytes)"}"#)
            #expect(wrong.status == .unauthorized)
            let tooLong = try await api.send(
                .post, "/users", token: admin,
                body: CreateUserRequest(
                    username: "euro2", email: "euro2@example.com", password: String(repeating: "€", count: 73), role: .viewer))
            #expect(tooLong.status == .badRequest)
            #expect(try tooLong.error.details["field"] == "password")
        }
    }

    @Test(arguments: [
        (#"{"email":"a@example.com","password":"password1","role":"viewer"}"#, "MISSING_PARAMETER", "username"),
        (#"{"username":"abc","password":"password1","role":"viewer"}"#, "MISSING_PARAMETER", "email"),
        (#"{"username":"abc","email":"a@example.com","role":"viewer"}"#, "MISSING_PARAMETER", "password"),
        (#"{"username":"abc","email":"a@example.com","password":"password1"}"#, "MISSING_PARAMETER", "role"),
        (#"{"username":"ab","email":"a@example.com","password":"password1","role":"viewer"}"#, "INVALID_PARAMETER", "username"),
        (#"{"username":"a b c","email":"a@example.com","password":"password1","role":"viewer"}"#, "INVALID_PARAMETER", "username"),
        (#"{"username":"abc","email":"not-an-email","password":"password1","role":"viewer"}"#, "INVALID_PARAMETER", "email"),
        (#"{"username":"abc","email":"a@example.com","password":"short","role":"viewer"}"#, "INVALID_PARAMETER", "password"),
        (#"{"username":"abc","email":"a@example.com","password":"password1","role":"root"}"#, "INVALID_PARAMETER", "role"),
        (#"{"username":123,"email":"a@example.com","password":"password1","role":"viewer"}"#, "INVALID_PARAMETER", "username"),
        (#"{"username":"abc","email":"a@example.com","password":"password1","role":"viewer","metadata":[1]}"#, "INVALID_PARAMETER", "metadata"),
        (#"{"username":null,"email":"a@example.com","password":"password1","role":"viewer"}"#, "MISSING_PARAMETER", "username"),
    ])
    func invalidUserIsRefusedNamingTheField(body: String, code: String, field: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let admin = try await api.adminToken()
                let response = try await api.request(.post, "/users", token: admin, json: body)
                #expect(response.status == .badRequest)
                let error = try response.error
                #expect(error.code == code)
                #expect(error.details["field"] == .string(field))
                let list = try await api.request(.get, "/users", token: admin).decode(UserList.self)
                #expect(list.totalUsers == 1)
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func duplicateUsernameOrEmailIsConflict(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            _ = try await api.createUser("dupe", role: .viewer, adminToken: admin)
            let sameName = try await api.send(
                .post, "/users", token: admin,
                body: CreateUserRequest(username: "DUPE", email: "other@example.com", password: "password1", role: .viewer))
            #expect(sameName.status == .conflict)
            #expect(try sameName.error.code == "RESOURCE_CONFLICT")
            #expect(try sameName.error.details["field"] == "username")
            let sameEmail = try await api.send(
                .post, "/users", token: admin,
                body: CreateUserRequest(username: "other", email: "dupe@example.com", password: "password1", role: .viewer))
            #expect(sameEmail.status == .conflict)
            #expect(try sameEmail.error.details["field"] == "email")
        }
    }

    @Test(arguments: TestBackend.all)
    func listFiltersAndPaginates(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            for index in 0..<3 { _ = try await api.createUser("viewer\(index)", role: .viewer, adminToken: admin) }
            let (op, _) = try await api.createUser("operator1", role: .operator, adminToken: admin)
            _ = try await api.send(.patch, "/users/\(op.userID)", token: admin, body: UpdateUserRequest(isActive: false))

            let page = try await api.request(.get, "/users?limit=2&offset=1", token: admin).decode(UserList.self)
            #expect(page.totalUsers == 5)
            #expect(page.users.map(\.username) == ["viewer0", "viewer1"])
            #expect(page.pagination == Pagination(limit: 2, offset: 1, hasMore: true))
            let last = try await api.request(.get, "/users?limit=2&offset=3", token: admin).decode(UserList.self)
            #expect(last.pagination.hasMore == false)
            #expect(last.users.count == 2)

            let viewers = try await api.request(.get, "/users?role=viewer", token: admin).decode(UserList.self)
            #expect(viewers.totalUsers == 3 && viewers.users.allSatisfy { $0.role == .viewer })
            let inactive = try await api.request(.get, "/users?is_active=false", token: admin).decode(UserList.self)
            #expect(inactive.users.map(\.username) == ["operator1"])
            let defaults = try await api.request(.get, "/users", token: admin).decode(UserList.self)
            #expect(defaults.pagination == Pagination(limit: 50, offset: 0, hasMore: false))
            #expect(defaults.users.first { $0.username == "admin" }?.lastLogin != nil)
        }
    }

    @Test(arguments: ["role=root", "is_active=maybe", "limit=0", "limit=501", "limit=abc", "offset=-1"])
    func badListParametersAreInvalid(query: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let admin = try await api.adminToken()
                let response = try await api.request(.get, "/users?\(query)", token: admin)
                #expect(response.status == .badRequest)
                #expect(try response.error.code == "INVALID_PARAMETER")
                #expect(try response.error.details["field"] == .string(String(query.prefix { $0 != "=" })))
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func patchChangesEmailRolePasswordAndValidates(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let (user, _) = try await api.createUser("patchme", role: .viewer, adminToken: admin)
            let response = try await api.request(
                .patch, "/users/\(user.userID)", token: admin,
                json: #"{"email":"patched@example.com","role":"operator","password":"new-password-1"}"#)
            #expect(response.status == .ok)
            let patched = try response.decode(User.self)
            #expect(patched.email == "patched@example.com" && patched.role == .operator && patched.isActive)
            _ = try await api.login("patchme", "new-password-1")

            let badEmail = try await api.request(.patch, "/users/\(user.userID)", token: admin, json: #"{"email":"nope"}"#)
            #expect(badEmail.status == .badRequest)
            #expect(try badEmail.error.details["field"] == "email")
            let badType = try await api.request(.patch, "/users/\(user.userID)", token: admin, json: #"{"is_active":"yes"}"#)
            #expect(try badType.error.code == "INVALID_PARAMETER")
            let taken = try await api.request(.patch, "/users/\(user.userID)", token: admin, json: #"{"email":"admin@localhost.localdomain"}"#)
            #expect(taken.status == .conflict)
            let missing = try await api.request(.patch, "/users/user-nope", token: admin, json: #"{"role":"viewer"}"#)
            #expect(missing.status == .notFound)
            #expect(try missing.error.code == "RESOURCE_NOT_FOUND")
            #expect(try await api.request(.get, "/users/user-nope", token: admin).status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func lastActiveAdminCannotBeDemotedOrDeactivated(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let me = try await api.request(.get, "/auth/me", token: admin).decode(User.self)
            for body in [#"{"is_active":false}"#, #"{"role":"operator"}"#] {
                let response = try await api.request(.patch, "/users/\(me.userID)", token: admin, json: body)
                #expect(response.status == .conflict)
            }
            _ = try await api.createUser("second_admin", role: .admin, adminToken: admin)
            let demoted = try await api.request(.patch, "/users/\(me.userID)", token: admin, json: #"{"role":"operator"}"#)
            #expect(demoted.status == .ok)
        }
    }
}
