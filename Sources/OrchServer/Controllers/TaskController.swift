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
