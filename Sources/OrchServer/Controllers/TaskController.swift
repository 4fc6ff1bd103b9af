import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// Reading tasks and their events, and `PUT /jobs/{task_id}/status`.
struct TaskController {
    let store: any Store
    let bus: EventBus

    static let maximumTaskPage = 500
    static let maximumEventPage = 1000

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/tasks", access: .role(.viewer), handler: list)
        api.on(.get, "/tasks/{task_id}", access: .role(.viewer), handler: show)
        api.on(.get, "/jobs/{task_id}/events", access: .role(.viewer), handler: events)
        api.on(.put, "/jobs/{task_id}/status", access: .role(.operator), handler: updateStatus)
        api.on(.post, "/tasks/{task_id}/retry", access: .role(.operator), handler: retry)
        api.on(.post, "/tasks/cancel", access: .role(.operator)) { request, context in
            try await bulk(request, context: context, action: .cancel)
        }
        api.on(.post, "/tasks/retry", access: .role(.operator)) { request, context in
            try await bulk(request, context: context, action: .retry)
        }
    }

    /// The tasks one bulk transaction changes at most: small enough that a batch holds the
    /// SQLite write lock for about ten milliseconds (see the README for the measured stall).
    static let bulkBatchSize = 100
    /// The pause between two bulk batches, so that writes waiting meanwhile commit in a
    /// transaction of their own rather than in one shared with the next batch.
    static let bulkBatchPause: Duration = .milliseconds(2)
    /// The most ids `task_ids` takes.
    static let maximumBulkIDs = 1000

    /// What `POST /tasks/cancel` and `POST /tasks/retry` do to each matching task.
    enum BulkAction {
        case cancel, retry

        /// The statuses the action applies to; other matching tasks are skipped.
        var applies: [TaskStatus] {
            switch self {
            case .cancel: [.scheduled, .queued, .running]
            case .retry: [.failed, .cancelled]
            }
        }

        var past: String {
            switch self {
            case .cancel: "cancelled"
            case .retry: "retried"
            }
        }

        func change(_ task: TaskRecord, now: Date) -> TaskTransition? {
            switch self {
            case .cancel:
                try? TaskLifecycle.update(task, with: StatusUpdateRequest(status: .cancelled, message: "bulk cancel"), now: now)
            case .retry:
                try? TaskLifecycle.retry(task, now: now)
            }
        }
    }

    /// Cancels or retries every task matching the filter, in batches of ``bulkBatchSize``
    /// (each its own transaction, so dispatches are not held up behind one long one), or with
    /// `dry_run` only counts them. Answers how many matched, changed and were skipped.
    func bulk(_ request: Request, context: OrchRequestContext, action: BulkAction) async throws -> Response {
        let body = try await request.decodeJSON(as: BulkTaskRequest.self)
        let filter = try Self.filter(body)
        if body.dryRun {
            let matched = try await store.countTasks(matching: filter)
            var applicable = filter
            applicable.statuses = (filter.statuses.isEmpty ? action.applies : filter.statuses).filter(action.applies.contains)
            let applying = applicable.statuses.isEmpty ? 0 : try await store.countTasks(matching: applicable)
            return try .json(
                BulkTaskResponse(matched: matched, changed: nil, skipped: matched - applying, dryRun: true, action: action.past))
        }
        var (matched, changed) = (0, 0)
        var cursor: Int64?
        repeat {
            let now = Date()
            let batch = try await store.modifyTasks(matching: filter, after: cursor, limit: Self.bulkBatchSize) { task in
                action.change(task, now: now)
            }
            bus.publish(batch.changed.flatMap(\.events))
            matched += batch.matched
            changed += batch.changed.count
            cursor = batch.matched == Self.bulkBatchSize ? batch.cursor : nil
            if cursor != nil { try await Task.sleep(for: Self.bulkBatchPause) }
        } while cursor != nil
        context.logger.info(
            "bulk \(action.past)", metadata: ["matched": "\(matched)", "changed": "\(changed)"])
        return try .json(
            BulkTaskResponse(matched: matched, changed: changed, skipped: matched - changed, dryRun: false, action: action.past))
    }

    /// A bulk request's filter, checked: valid values, at most 1,000 ids. No filter matches
    /// every task (a `dry_run` first shows how many).
    static func filter(_ body: BulkTaskRequest) throws -> TaskFilter {
        if let core = body.coreID { try TaskRules.validateCoreID(core, field: "core_id") }
        if let priority = body.priority { try TaskRules.check(priority, in: TaskRules.priorities, field: "priority") }
        if let ids = body.taskIDs, ids.count > maximumBulkIDs {
            throw OrchError.invalidParameter("task_ids", "must hold at most \(maximumBulkIDs) ids")
        }
        return TaskFilter(
            coreID: body.coreID, statuses: body.status.map { [$0] } ?? [], priority: body.priority,
            createdBefore: body.createdBefore, createdAfter: body.createdAfter, taskIDs: body.taskIDs)
    }

    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let query = QueryParameters(request)
        var taskQuery = TaskQuery(
            status: try query.value("status", as: TaskStatus.self), coreID: query.string("core_id"),
            priority: nil, sort: try query.value("sort", as: TaskQuery.SortField.self) ?? .createdAt,
            order: try query.value("order", as: TaskQuery.Order.self) ?? .desc,
            limit: try query.integer("limit", default: 50, in: 1...Self.maximumTaskPage),
            offset: try query.integer("offset", default: 0, in: 0...Int(Int32.max)))
        if query.present("priority") != nil {
            taskQuery.priority = try query.integer("priority", default: 1, in: TaskRules.priorities)
        }
        let (total, tasks) = try await store.listTasks(taskQuery)
        return try .json(
            TaskList(
                totalTasks: total, tasks: tasks.map(\.apiValue),
                pagination: Pagination(limit: taskQuery.limit, offset: taskQuery.offset, total: total)))
    }

    @Sendable func show(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("task_id")
        return try .json(try await existingTask(id).apiValue)
    }

    @Sendable func events(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("task_id")
        let query = QueryParameters(request)
        var since: Date?
        if let text = query.present("since") {
            guard let date = Timestamp.parse(text) else {
                throw OrchError.invalidParameter("since", "must be an ISO 8601 timestamp")
            }
            since = date
        }
        let eventQuery = EventQuery(
            eventType: query.string("event_type"), since: since,
            limit: try query.integer("limit", default: 100, in: 1...Self.maximumEventPage),
            offset: try query.integer("offset", default: 0, in: 0...Int(Int32.max)))
        _ = try await existingTask(id)
        let (total, events) = try await store.taskEvents(taskID: id, eventQuery)
        return try .json(
            TaskEventList(
                taskID: id, totalEvents: total, events: events.map(\.apiValue),
                pagination: Pagination(limit: eventQuery.limit, offset: eventQuery.offset, total: total)))
    }

    @Sendable func updateStatus(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("task_id")
        let update = try TaskRules.validated(await request.decodeJSON(as: StatusUpdateRequest.self))
        let now = Date()
        let (task, events) = try await store.modifyTask(id: id) { task in
            try TaskLifecycle.update(task, with: update, now: now)
        }
        bus.publish(events)
        guard let last = events.last else { throw OrchError.internalError }
        return try .json(StatusUpdateResponse(taskID: task.id, updatedAt: task.updatedAt, eventID: last.apiValue.eventID))
    }

    /// Puts a failed or cancelled task back in the queue with a fresh attempt budget; answers
    /// the task. 409 for any other status.
    @Sendable func retry(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("task_id")
        let now = Date()
        let (task, events) = try await store.modifyTask(id: id) { task in try TaskLifecycle.retry(task, now: now) }
        bus.publish(events)
        return try .json(task.apiValue)
    }

    func existingTask(_ id: String) async throws -> TaskRecord {
        guard let task = try await store.task(id: id) else {
            throw OrchError.taskNotFound(id)
        }
        return task
    }
}
