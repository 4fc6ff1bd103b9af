import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// `POST /locks`, `DELETE /locks/{resource}`, `GET /locks`. Operator or system.
struct LockController {
    let store: any Store
    let locks: LockManager

    /// `expired=true` lists locks that expired within this window.
    static let expiredWindow: TimeInterval = 3600

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/locks", access: .role(.operator), handler: acquire)
        api.on(.delete, "/locks/{resource}", access: .role(.operator), handler: release)
        api.on(.get, "/locks", access: .role(.operator), handler: list)
    }

    /// Waits up to `timeout` seconds behind the holder; a waiter whose client hangs up leaves
    /// the queue at once.
    @Sendable func acquire(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try LockRules.validated(await request.decodeJSON(as: AcquireLockRequest.self))
        let hangUp = HangUpSignal()
        let locks = self.locks
        // Real sockets only: the in-process test transport has no connection to watch.
        // A wait ends with 503 when the server begins shutting down, so SIGTERM never waits for it.
        let shutdown = HangUpSignal()
        let lock =
            body.timeout > 0 && context.remoteAddress != nil
            ? try await hangUp.watching(context.channel) {
                try await withGracefulShutdownHandler {
                    try await locks.acquire(body, abandoned: hangUp, shutdown: shutdown)
                } onGracefulShutdown: {
                    shutdown.fire()
                }
            }
            : try await locks.acquire(body)
        return try .json(lock.grant)
    }

    @Sendable func release(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let resource = try context.pathParameter("resource")
        let query = QueryParameters(request)
        let force = try query.boolean("force") ?? false
        // `owner` is required as in the reference; with `force` (admins) it need not match.
        guard let given = query.raw("owner") else { throw OrchError.missingParameter("owner") }
        try TextRules.check(given, codePoints: LockRules.ownerLength, field: "owner")
        let owner = given.nfc
        if force {
            guard context.identity?.role == .admin else {
                throw OrchError.insufficientPermissions(required: .admin, actual: context.identity?.role ?? .viewer)
            }
        }
        let (lock, releasedAt) = try await locks.release(resource: resource, owner: owner, force: force)
        return try .json(LockRelease(resource: lock.resource, owner: lock.owner, releasedAt: releasedAt))
    }

    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let query = QueryParameters(request)
        let now = Date()
        let includeExpired = try query.boolean("expired") ?? false
        let records = try await store.listLocks(
            resource: query.string("resource"), owner: query.string("owner"),
            expiredSince: includeExpired ? now.addingTimeInterval(-Self.expiredWindow) : nil)
        let infos = records.map { $0.info(now: now) }
        return try .json(LockList(totalLocks: infos.count, locks: infos, queueStatus: try await locks.queueStatus()))
    }
}
