import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// User management: `POST /users`, `GET /users`, `GET /users/{user_id}`, `PATCH /users/{user_id}`.
/// Admin only.
struct UserController {
    let store: any Store
    let passwords: PasswordHasher
    /// To close the live streams of a user who is deactivated or loses the viewer role.
    let bus: EventBus

    /// `GET /users` pages are at most this long.
    static let maximumPageSize = 500

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/users", access: .role(.admin), handler: create)
        api.on(.get, "/users", access: .role(.admin), handler: list)
        api.on(.get, "/users/{user_id}", access: .role(.admin), handler: show)
        api.on(.patch, "/users/{user_id}", access: .role(.admin), handler: update)
    }

    @Sendable func create(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: CreateUserRequest.self)
        try UserRules.validateUsername(body.username)
        try UserRules.validateEmail(body.email)
        try UserRules.validatePassword(body.password)
        let user = UserRecord(
            id: Identifier.make("user"), username: body.username, email: body.email, role: body.role,
            passwordHash: try await passwords.hash(body.password), createdAt: Date(), metadata: body.metadata ?? [:])
        try await store.createUser(user)
        context.logger.info("user created", metadata: ["user_id": "\(user.id)", "role": "\(user.role.rawValue)"])
        return try .json(user.apiValue, status: .created)
    }

    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let query = QueryParameters(request)
        let userQuery = UserQuery(
            role: try query.value("role", as: Role.self), isActive: try query.boolean("is_active"),
            limit: try query.integer("limit", default: 50, in: 1...Self.maximumPageSize),
            offset: try query.integer("offset", default: 0, in: 0...Int(Int32.max)))
        let (total, users) = try await store.listUsers(userQuery)
        return try .json(
            UserList(
                totalUsers: total, users: users.map(\.apiValue),
                pagination: Pagination(limit: userQuery.limit, offset: userQuery.offset, total: total)))
    }

    @Sendable func show(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("user_id")
        guard let user = try await store.user(id: id) else { throw OrchError.notFound("User \(id) not found") }
        return try .json(user.apiValue)
    }

    /// Changes email, role, active flag or password. Refuses (409) a change that would leave no
    /// active admin, so the server cannot be locked out of user management. A new password, a
    /// deactivation or a role change ends the user's sessions and revokes the API tokens they
    /// may no longer hold (``CredentialEffects``).
    @Sendable func update(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("user_id")
        let body = try await request.decodeJSON(as: UpdateUserRequest.self)
        if let email = body.email { try UserRules.validateEmail(email) }
        if let password = body.password { try UserRules.validatePassword(password) }
        guard let current = try await store.user(id: id) else { throw OrchError.notFound("User \(id) not found") }
        let losesAdmin = current.role == .admin && current.isActive && (body.role.map { $0 != .admin } ?? false || body.isActive == false)
        if losesAdmin {
            let activeAdmins = try await store.listUsers(UserQuery(role: .admin, isActive: true, limit: 2)).total
            if activeAdmins <= 1 {
                throw OrchError.conflict("The last active admin cannot be demoted or deactivated")
            }
        }
        let effects = CredentialEffects(
            role: current.role, isActive: current.isActive, newRole: body.role, newActive: body.isActive,
            newPassword: body.password != nil)
        let changes = UserChanges(
            email: body.email, role: body.role, isActive: body.isActive,
            passwordHash: try await body.password.asyncMap { try await passwords.hash($0) },
            endsSessions: effects.endsSessions, revokedAPITokenRoles: effects.revokedAPITokenRoles)
        guard let user = try await store.updateUser(id: id, changes: changes) else {
            throw OrchError.notFound("User \(id) not found")
        }
        // Their streams were opened with credentials that no longer hold.
        if effects.endsSessions || !user.isActive { bus.revoke(userID: id) }
        context.logger.info("user updated", metadata: ["user_id": "\(id)"])
        return try .json(user.apiValue)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
