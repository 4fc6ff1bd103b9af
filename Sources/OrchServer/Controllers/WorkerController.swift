import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// The worker protocol: `POST /cores/{core_id}/claim` and `POST /jobs/{task_id}/heartbeat`.
struct WorkerController {
    let store: any Store
    let bus: EventBus
    let signals: CoreSignals

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/cores/{core_id}/claim", access: .role(.operator), handler: claim)
        api.on(.post, "/jobs/{task_id}/heartbeat", access: .role(.operator), handler: heartbeat)
    }

    /// Long-polls for up to `max_tasks` tasks: 200 with them as soon as any is claimable, or 204
    /// when `wait` runs out first. A dispatch to the core wakes the claim at once.
    @Sendable func claim(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let core = try context.pathParameter("core_id")
        try TaskRules.validateCoreID(core, field: "core_id")
        let body = try TaskRules.validated(await request.decodeJSON(as: ClaimRequest.self))
        // A long poll ends as soon as its client hangs up (real sockets only), so a worker that
        // stops does not leave a request waiting on the server.
        guard body.wait > 0, context.remoteAddress != nil else { return try await poll(core: core, body: body) }
        let hangUp = HangUpSignal()
        let polling = Task { try await poll(core: core, body: body) }
        hangUp.whenFired { polling.cancel() }
        // Shutdown ends the wait too: the claim answers with what it has (204 when nothing).
        return try await hangUp.watching(context.channel) {
            try await withGracefulShutdownHandler {
                try await withTaskCancellationHandler { try await polling.value } onCancel: { polling.cancel() }
            } onGracefulShutdown: {
                polling.cancel()
            }
        }
    }

    /// Claims, waiting up to `body.wait` seconds for a task; 204 when none came (or cancelled).
    func poll(core: String, body: ClaimRequest) async throws -> Response {
        let deadline = ContinuousClock.now + .seconds(body.wait)
        while true {
            let versions = signals.versions(of: core)
            let now = Date()
            let claimed = try await store.claimTasks(
                coreID: core, workerID: body.workerID, limit: body.maxTasks, now: now
            ) { task in
                try TaskLifecycle.claim(
                    task, workerID: body.workerID, lease: body.lease, leaseToken: Identifier.make("lease"), now: now)
            }
            if !claimed.tasks.isEmpty {
                bus.publish(claimed.tasks.flatMap(\.events))
                let tasks = claimed.tasks.map { task, _ in
                    ClaimedTask(task: task.apiValue, leaseToken: task.leaseToken ?? "", leaseExpiresAt: task.leaseExpiresAt ?? now)
                }
                return try .json(ClaimResponse(tasks: tasks))
            }
            // A scheduled task coming due is announced (`task.ready`) like a dispatch; a core at
            // its cap waits for a run to end as well.
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, !Task.isCancelled else { return Response(status: .noContent) }
            let need: CoreSignals.Need = claimed.blocked == .atCapacity ? .room : .task
            await signals.wait(on: core, after: versions, for: need, timeout: remaining)
        }
    }

    /// Extends a lease; tells the worker whether its task was cancelled.
    @Sendable func heartbeat(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("task_id")
        let body = try TaskRules.validated(await request.decodeJSON(as: HeartbeatRequest.self))
        let now = Date()
        let (task, _) = try await store.modifyTask(id: id) { task in
            try TaskLifecycle.heartbeat(
                task, workerID: body.workerID, leaseToken: body.leaseToken, lease: body.lease, now: now)
        }
        return try .json(
            HeartbeatResponse(
                taskID: task.id, status: task.status, leaseExpiresAt: task.leaseExpiresAt ?? now,
                cancelRequested: task.cancelRequested))
    }
}
