import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct ErrorEnvelopeTests {
    @Test(arguments: TestBackend.all)
    func unknownRouteIsNotFoundInTheEnvelope(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let response = try await api.request(.get, "/no/such/route")
            #expect(response.status == .notFound)
            let error = try response.error
            #expect(error.code == "RESOURCE_NOT_FOUND")
            #expect(error.requestID.hasPrefix("req-"))
            #expect(response.headers[.xRequestID] == error.requestID)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
        }
    }

    @Test(arguments: TestBackend.all)
    func wrongMethodIsMethodNotAllowedWithAllow(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let response = try await api.request(.delete, "/health")
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "GET, HEAD")
            let templated = try await api.request(.delete, "/users/user-123")
            #expect(templated.status == .methodNotAllowed)
            #expect(templated.headers[.allow]?.contains("PATCH") == true)
            #expect(try templated.error.details["method"] == "DELETE")
        }
    }

    @Test(arguments: ["{bad json", "[1,2]", "\"text\"", ""])
    func malformedBodyIsValidationError(body: String) async throws {
        // Input checks, on every backend.
        for backend in TestBackend.all {
            try await TestServer.withApp(backend: backend) { api in
                let response = try await api.request(.post, "/auth/login", json: body)
                #expect(response.status == .badRequest)
                #expect(try response.error.code == "VALIDATION_ERROR")
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func missingFieldIsMissingParameterNamingIt(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let response = try await api.request(.post, "/auth/login", json: #"{"username":"admin"}"#)
            #expect(response.status == .badRequest)
            let error = try response.error
            #expect(error.code == "MISSING_PARAMETER")
            #expect(error.details["field"] == "password")
        }
    }

    @Test(arguments: TestBackend.all)
    func wrongTypeIsInvalidParameterNamingIt(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let response = try await api.request(.post, "/auth/login", json: #"{"username":"admin","password":["x"]}"#)
            #expect(response.status == .badRequest)
            let error = try response.error
            #expect(error.code == "INVALID_PARAMETER")
            #expect(error.details["field"] == "password")
        }
    }

    @Test(arguments: TestBackend.all)
    func bodyOverOneMebibyteIsPayloadTooLarge(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let admin = try await api.adminToken()
            let padding = String(repeating: "x", count: (1 << 20) + 1)
            let response = try await api.request(
                .post, "/users", token: admin,
                json: #"{"username":"big","email":"big@example.com","password":"password1","role":"viewer","metadata":{"p":"\#(padding)"}}"#)
            #expect(response.status == .contentTooLarge)
            #expect(try response.error.details["limit"] == .int(1 << 20))
            #expect(try await api.request(.get, "/users", token: admin).decode(UserList.self).totalUsers == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func callersRequestIDIsEchoedAndUnsafeOnesReplaced(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
            let given = try await api.request(.get, "/nowhere", headers: [.xRequestID: "trace-42.a:b_c"])
            #expect(given.headers[.xRequestID] == "trace-42.a:b_c")
            #expect(try given.error.requestID == "trace-42.a:b_c")
            let ok = try await api.request(.get, "/health", headers: [.xRequestID: "abc"])
            #expect(ok.headers[.xRequestID] == "abc")
            for unsafe in ["has space", "<script>", String(repeating: "a", count: 129)] {
                let response = try await api.request(.get, "/nowhere", headers: [.xRequestID: unsafe])
                let echoed = try #require(response.headers[.xRequestID])
                #expect(echoed.hasPrefix("req-"))
                #expect(try response.error.requestID == echoed)
            }
        }
    }

    /// A storage failure (here: the users table dropped behind the server's back) becomes a
    /// bare 500 with nothing internal in it.
    @Test(arguments: TestBackend.all)
    func unexpectedFailureIsInternalErrorWithoutInternals(backend: TestBackend) async throws {
        try await TestServer.withDurableDatabase(backend) { database in
            try await TestServer.withApp(TestServer.configuration(database: database), backend: backend) { api in
                let admin = try await api.adminToken()
                switch database {
                case .sqliteFile(let path):
                    // Waiting for the server's writer, as the server's own connections do.
                    var patient = Configuration()
                    patient.busyMode = .timeout(5)
                    let saboteur = try DatabaseQueue(path: path, configuration: patient)
                    try await saboteur.write { db in try db.execute(sql: "DROP TABLE users") }
                    try saboteur.close()
                case .postgres(let url):
                    try await TestPostgres.shared.execute("DROP TABLE users CASCADE", in: url.database)
                case .sqliteMemory:
                    Issue.record("a durable database was asked for")
                }
                let response = try await api.request(.get, "/users", token: admin)
                #expect(response.status == .internalServerError)
                let error = try response.error
                #expect(error.code == "INTERNAL_ERROR")
                #expect(error.message == "Internal server error")
                #expect(error.details.isEmpty)
                for leak in ["SQL", "GRDB", "sqlite", "no such table", "PostgreSQL", "relation", "42P01"] {
                    #expect(!response.text.contains(leak))
                }
            }
        }
    }
}
