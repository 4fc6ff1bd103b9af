import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// `GET /cores`, `GET /cores/{core_id}` and `PATCH /cores/{core_id}`: what each core holds,
/// pausing it and capping how many of its tasks run at once.
struct CoreController {
    let store: any Store
    let bus: EventBus

    /// The highest `max_running` accepted.
    static let maximumRunningCap = 100_000

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/cores", access: .role(.viewer), handler: list)
        api.on(.get, "/cores/{core_id}", access: .role(.viewer), handler: show)
        api.on(.patch, "/cores/{core_id}", access: .role(.operator), handler: update)
    }

    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let now = Date()
        let cores = try await store.coreSummaries(coreID: nil, activeSince: Self.activeSince(now))
        return try .json(CoreList(cores: cores.map { Self.info($0, now: now) }))
    }

    /// 404 for a core with no tasks, no settings and no workers seen.
    @Sendable func show(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("core_id")
        try TaskRules.validateCoreID(id, field: "core_id")
        let now = Date()
        guard let core = try await store.coreSummaries(coreID: id, activeSince: Self.activeSince(now)).first else {
            throw OrchError.notFound("Core \(id) not found", details: ["core_id": .string(id)])
        }
        return try .json(Self.info(core, now: now))
    }

    /// Changes the fields given (`"max_running": null` removes the cap; `"paused": null` is
    /// as if absent; `{}` changes nothing) and answers the core.
    /// Any core id may be set up before its first dispatch. Resuming, or raising the cap, wakes
    /// waiting claims on every node (`core.updated`).
    @Sendable func update(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("core_id")
        try TaskRules.validateCoreID(id, field: "core_id")
        let body = try await request.decodeJSON(as: CoreUpdateRequest.self)
        if case .some(.some(let cap)) = body.maxRunning {
            try TaskRules.check(cap, in: 1...Self.maximumRunningCap, field: "max_running")
        }
        let (settings, event) = try await store.updateCore(id: id) { settings in
            var next = settings
            if let paused = body.paused { next.paused = paused }
            if let cap = body.maxRunning { next.maxRunning = cap }
            return next
        } describe: { settings in
            EventDraft(
                type: .coreUpdated, timestamp: Date(),
                data: [
                    "core_id": .string(id), "paused": .bool(settings.paused),
                    "max_running": settings.maxRunning.map { .int(Int64($0)) } ?? .null,
                ])
        }
        bus.publish([event])
        context.logger.info(
            "core updated", metadata: ["core_id": "\(id)", "paused": "\(settings.paused)", "max_running": "\(settings.maxRunning.map(String.init) ?? "none")"])
        let now = Date()
        guard let core = try await store.coreSummaries(coreID: id, activeSince: Self.activeSince(now)).first else {
            throw OrchError.internalError
        }
        return try .json(Self.info(core, now: now))
    }

    static func activeSince(_ now: Date) -> Date {
        now.addingTimeInterval(-DispatchController.workerActivityWindow)
    }

    static func info(_ core: CoreSummary, now: Date) -> CoreInfo {
        CoreInfo(
            coreID: core.settings.coreID, queued: core.queued, scheduled: core.scheduled, running: core.running,
            paused: core.settings.paused, maxRunning: core.settings.maxRunning, activeWorkers: core.activeWorkers,
            oldestQueuedAt: core.oldestQueuedAt,
            oldestQueuedAge: core.oldestQueuedAt.map { max(0, now.timeIntervalSince($0)) })
    }
}
