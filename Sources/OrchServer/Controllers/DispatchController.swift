import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// `POST /dispatch`.
struct DispatchController {
    let store: any Store
    let bus: EventBus
    /// `ORCH_CALLBACK_ALLOWED_HOSTS`; empty allows any host.
    let callbackAllowedHosts: [String]

    /// How long an `Idempotency-Key` is remembered.
    static let idempotencyWindow: TimeInterval = 24 * 3600
    /// Time per task assumed for `estimated_start` until the core has completed tasks.
    static let defaultTaskDuration: TimeInterval = 30
    /// A worker counts as active on a core for this long after its last claim.
    static let workerActivityWindow: TimeInterval = 60

    /// The most tasks one `POST /dispatch/batch` takes.
    static let maximumBatch = 1000
    /// Body limit of `POST /dispatch/batch` (other routes take 1 MiB).
    static let maximumBatchBodySize = 16 << 20

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/dispatch", access: .role(.operator), handler: dispatch)
        api.on(.post, "/dispatch/batch", access: .role(.operator), handler: dispatchBatch)
    }

    /// Creates a task (202), or with a known `Idempotency-Key` answers the original task (200).
    @Sendable func dispatch(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: DispatchRequest.self)
        let now = Date()
        let transition = try prepare(body, createdBy: context.identity?.userID, now: now)
        let idempotency = try idempotencyKey(request, body: body, userID: context.identity?.userID, now: now)
        let activeSince = now.addingTimeInterval(-Self.workerActivityWindow)
        switch try await store.insertTask(transition, idempotency: idempotency, activeSince: activeSince) {
        case .created(let task, let events, let standing):
            bus.publish(events)
            context.logger.debug("task dispatched", metadata: ["task_id": "\(task.id)", "core_id": "\(task.coreID)"])
            return try .json(Self.response(for: task, standing: standing, now: now), status: .accepted)
        case .repeated(let task, let standing):
            return try .json(Self.response(for: task, standing: standing, now: now), status: .ok)
        }
    }

    /// Creates 1 to 1,000 tasks at once (202), all or none: every task is validated as
    /// `POST /dispatch` validates it (an error names the task as `tasks[i]`), then all are
    /// stored in one transaction, and each is answered as `POST /dispatch` answers it (its
    /// queue position as if the tasks had been dispatched one after another, in order).
    /// `Idempotency-Key` is refused here: one key cannot stand for many tasks.
    @Sendable func dispatchBatch(_ request: Request, context: OrchRequestContext) async throws -> Response {
        if request.headers[.idempotencyKey] != nil {
            throw OrchError.invalidParameter("Idempotency-Key", "is not supported by /dispatch/batch")
        }
        let body = try await request.decodeJSON(as: DispatchBatchRequest.self, maximumSize: Self.maximumBatchBodySize)
        guard (1...Self.maximumBatch).contains(body.tasks.count) else {
            throw OrchError.invalidParameter("tasks", "must hold 1 to \(Self.maximumBatch) tasks")
        }
        let now = Date()
        let transitions = try body.tasks.enumerated().map { index, task in
            do {
                return try prepare(task, createdBy: context.identity?.userID, now: now)
            } catch let error as OrchError {
                throw error.located(in: "tasks[\(index)]")
            }
        }
        let stored = try await store.insertTasks(transitions, activeSince: now.addingTimeInterval(-Self.workerActivityWindow))
        bus.publish(stored.flatMap(\.events))
        context.logger.debug("tasks dispatched", metadata: ["count": "\(stored.count)"])
        return try .json(
            DispatchBatchResponse(tasks: stored.map { Self.response(for: $0.task, standing: $0.standing, now: now) }),
            status: .accepted)
    }

    /// `body` validated (fields, metadata size, callback URL) as a new task's dispatch.
    func prepare(_ body: DispatchRequest, createdBy: String?, now: Date) throws -> TaskTransition {
        try TaskRules.validate(body, metadataBytes: JSONValue.jsonText(body.metadata).utf8.count, now: now)
        try Callback.validate(metadata: body.metadata, allowedHosts: callbackAllowedHosts)
        return TaskLifecycle.dispatch(body, id: Identifier.make("task"), createdBy: createdBy, now: now)
    }

    /// The dispatch answer for `task` standing at `standing`.
    static func response(for task: TaskRecord, standing: QueueStanding, now: Date) -> DispatchResponse {
        let (position, load) = (standing.position, standing.load)
        return DispatchResponse(
            taskID: task.id, status: task.status, coreID: task.coreID, priority: task.priority, timeout: task.timeout,
            createdAt: task.createdAt, estimatedStart: estimatedStart(task, position: position, load: load, now: now),
            queuePosition: position, runAt: task.readyAt)
    }

    /// When a queued task is expected to start: the tasks ahead of it are shared among the
    /// core's active workers (at least one), each wave taking the mean duration of the core's
    /// 100 most recently created completed tasks (30 s until there are some). A scheduled task
    /// starts at its `run_at`; one that is neither started (or would have) at its `started_at`,
    /// else now.
    static func estimatedStart(_ task: TaskRecord, position: Int, load: CoreLoad, now: Date) -> Date {
        if task.status == .scheduled { return task.readyAt }
        guard task.status == .queued, position > 0 else { return task.startedAt ?? now }
        let perTask = load.averageDuration ?? defaultTaskDuration
        let waves = (position - 1) / max(1, load.activeWorkers)
        return max(now, task.readyAt).addingTimeInterval(Double(waves) * perTask)
    }

    /// The request's `Idempotency-Key`, scoped to the user, with a fingerprint of the request.
    func idempotencyKey(_ request: Request, body: DispatchRequest, userID: String?, now: Date) throws -> IdempotencyKey? {
        guard let key = request.headers[.idempotencyKey], let userID else { return nil }
        guard (1...255).contains(key.count), key.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
            throw OrchError.invalidParameter("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let digest = SHA256.hash(data: try encoder.encode(body))
        return IdempotencyKey(
            userID: userID, key: key, fingerprint: digest.map { String(format: "%02x", $0) }.joined(),
            validAfter: now.addingTimeInterval(-Self.idempotencyWindow))
    }
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}
