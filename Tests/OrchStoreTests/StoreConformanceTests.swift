import Foundation
import OrchCore
import OrchModels
import Testing

@testable import OrchStore

/// The behaviour every `Store` backend must have. Each test runs against every backend.
@Suite struct StoreConformanceTests {
    static let backends = StoreBackend.all

    @Test(arguments: backends)
    func createdUserIsReadBackByIdAndUsername(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let user = makeUser("alice", role: .operator, metadata: ["team": "platform"])
            try await store.createUser(user)
            let byID = try #require(try await store.user(id: user.id))
            #expect(byID.username == "alice")
            #expect(byID.role == .operator)
            #expect(byID.metadata == ["team": "platform"])
            #expect(abs(byID.createdAt.timeIntervalSince(user.createdAt)) < 0.001)
            #expect(try await store.user(username: "ALICE")?.id == user.id)
            #expect(try await store.user(id: "user-missing") == nil)
        }
    }

    @Test(arguments: backends)
    func duplicateUsernameOrEmailIsAConflictNamingTheField(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await store.createUser(makeUser("bob"))
            await #expect(throws: OrchError.conflict("A user with this username already exists", details: ["field": "username"])) {
                try await store.createUser(makeUser("Bob", email: "other@example.com"))
            }
            await #expect(throws: OrchError.conflict("A user with this email already exists", details: ["field": "email"])) {
                try await store.createUser(makeUser("robert", email: "bob@example.com"))
            }
            #expect(try await store.countUsers() == 1)
        }
    }

    @Test(arguments: backends)
    func listFiltersByRoleAndActiveAndPages(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            for index in 0..<5 {
                try await store.createUser(makeUser("viewer\(index)", role: .viewer, createdAt: Date(timeIntervalSince1970: Double(1000 + index))))
            }
            try await store.createUser(makeUser("op", role: .operator, isActive: false))
            let all = try await store.listUsers(UserQuery(limit: 2, offset: 1))
            #expect(all.total == 6)
            #expect(all.users.map(\.username) == ["viewer1", "viewer2"])
            #expect(try await store.listUsers(UserQuery(role: .viewer)).total == 5)
            #expect(try await store.listUsers(UserQuery(isActive: false)).users.map(\.username) == ["op"])
            #expect(try await store.listUsers(UserQuery(role: .viewer, isActive: false)).total == 0)
        }
    }

    @Test(arguments: backends)
    func updateChangesOnlyGivenFieldsAndChecksEmailUniqueness(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let carol = makeUser("carol")
            try await store.createUser(carol)
            try await store.createUser(makeUser("dave"))
            let updated = try #require(try await store.updateUser(id: carol.id, changes: UserChanges(role: .admin, isActive: false)))
            #expect(updated.role == .admin && !updated.isActive && updated.email == carol.email)
            #expect(try await store.user(id: carol.id) == updated)
            await #expect(throws: OrchError.self) {
                _ = try await store.updateUser(id: carol.id, changes: UserChanges(email: "dave@example.com"))
            }
            #expect(try await store.user(id: carol.id)?.email == carol.email)
            #expect(try await store.updateUser(id: "user-none", changes: UserChanges(role: .viewer)) == nil)
        }
    }

    @Test(arguments: backends)
    func firstUserIsCreatedOnlyOnce(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            async let first = store.createFirstUser(makeUser("admin1"))
            async let second = store.createFirstUser(makeUser("admin2"))
            let results = try await [first, second]
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.countUsers() == 1)
        }
    }

    @Test(arguments: backends)
    func settingIsGeneratedOnceAndKept(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            #expect(try await store.setting("jwt_secret") == nil)
            #expect(try await store.insertSettingIfAbsent("jwt_secret", value: "one") == "one")
            #expect(try await store.insertSettingIfAbsent("jwt_secret", value: "two") == "one")
            #expect(try await store.setting("jwt_secret") == "one")
        }
    }

    @Test(arguments: backends)
    func recordLoginSetsLastLogin(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let user = makeUser("erin")
            try await store.createUser(user)
            #expect(try await store.user(id: user.id)?.lastLogin == nil)
            let when = Date(timeIntervalSince1970: 1_700_000_000.5)
            try await store.recordLogin(userID: user.id, at: when)
            #expect(try await store.user(id: user.id)?.lastLogin == when)
        }
    }

    /// Many concurrent writes, some failing: every successful one is kept, every failing one
    /// fails alone (group commit isolates writes from each other).
    @Test(arguments: backends)
    func concurrentWritesSucceedOrFailIndependently(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await store.createUser(makeUser("taken"))
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        // Every tenth write reuses a taken username and must fail.
                        let name = index % 10 == 0 ? "taken" : "user\(index)"
                        do {
                            try await store.createUser(makeUser(name, email: "u\(index)@example.com"))
                            return true
                        } catch let error as OrchError where error.code == .resourceConflict {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 180)
            #expect(try await store.countUsers() == 181)
        }
    }

    @Test(arguments: backends)
    func closedStoreFailsPing(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await store.ping()
            try await store.close()
            await #expect(throws: (any Error).self) { try await store.ping() }
        }
    }
}

func makeUser(
    _ username: String, email: String? = nil, role: Role = .viewer, isActive: Bool = true,
    createdAt: Date = Date(), metadata: [String: JSONValue] = [:]
) -> UserRecord {
    UserRecord(
        id: Identifier.make("user"), username: username, email: email ?? "\(username.lowercased())@example.com", role: role,
        passwordHash: "$2b$04$notarealhash", createdAt: createdAt, isActive: isActive, metadata: metadata)
}
