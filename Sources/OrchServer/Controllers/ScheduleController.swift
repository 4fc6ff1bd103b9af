import Foundation
import Hummingbird
import OrchCore
import OrchModels
import OrchStore

/// Recurring schedules: `POST /schedules`, `GET /schedules`, and `GET`, `PATCH`, `DELETE
/// /schedules/{schedule_id}` (operators change, viewers read). ``ScheduleRunner`` fires them.
struct ScheduleController {
    let store: any Store
    /// `ORCH_CALLBACK_ALLOWED_HOSTS`, for a `callback_url` in the task template.
    let callbackAllowedHosts: [String]

    static let maximumPage = 500

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/schedules", access: .role(.operator), handler: create)
        api.on(.get, "/schedules", access: .role(.viewer), handler: list)
        api.on(.get, "/schedules/{schedule_id}", access: .role(.viewer), handler: show)
        api.on(.patch, "/schedules/{schedule_id}", access: .role(.operator), handler: update)
        api.on(.delete, "/schedules/{schedule_id}", access: .role(.operator), handler: delete)
    }

    /// 201 with the schedule and its first `next_run_at`; 409 naming `name` when it is taken.
    @Sendable func create(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: CreateScheduleRequest.self)
        let schedule = try ScheduleLifecycle.create(
            body, id: Identifier.make("schedule"), createdBy: context.identity?.userID, now: Date())
        try Self.checkCallback(schedule.template, allowedHosts: callbackAllowedHosts)
        try await store.createSchedule(schedule)
        context.logger.info("schedule created", metadata: ["schedule_id": "\(schedule.id)", "name": "\(schedule.name)"])
        return try .json(schedule.apiValue, status: .created)
    }

    @Sendable func list(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let query = QueryParameters(request)
        let limit = try query.integer("limit", default: 50, in: 1...Self.maximumPage)
        let offset = try query.integer("offset", default: 0, in: 0...Int(Int32.max))
        let (total, schedules) = try await store.listSchedules(limit: limit, offset: offset)
        return try .json(
            ScheduleList(
                totalSchedules: total, schedules: schedules.map(\.apiValue),
                pagination: Pagination(limit: limit, offset: offset, total: total)))
    }

    @Sendable func show(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("schedule_id")
        guard let schedule = try await store.schedule(id: id) else { throw Self.notFound(id) }
        return try .json(schedule.apiValue)
    }

    @Sendable func update(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("schedule_id")
        let body = try await request.decodeJSON(as: UpdateScheduleRequest.self)
        let now = Date()
        let allowedHosts = callbackAllowedHosts
        let schedule = try await store.updateSchedule(id: id) { schedule in
            let next = try ScheduleLifecycle.update(schedule, with: body, now: now)
            try Self.checkCallback(next.template, allowedHosts: allowedHosts)
            return next
        }
        context.logger.info("schedule updated", metadata: ["schedule_id": "\(id)"])
        return try .json(schedule.apiValue)
    }

    /// 204; the tasks it dispatched stay.
    @Sendable func delete(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let id = try context.pathParameter("schedule_id")
        guard try await store.deleteSchedule(id: id) else { throw Self.notFound(id) }
        context.logger.info("schedule deleted", metadata: ["schedule_id": "\(id)"])
        return Response(status: .noContent)
    }

    /// A template's `callback_url` is checked as a dispatch's is.
    static func checkCallback(_ template: ScheduleTaskTemplate, allowedHosts: [String]) throws {
        try Callback.validate(metadata: template.metadata, allowedHosts: allowedHosts, prefix: "task.")
    }

    static func notFound(_ id: String) -> OrchError {
        .notFound("Schedule \(id) not found", details: ["schedule_id": .string(id)])
    }
}
