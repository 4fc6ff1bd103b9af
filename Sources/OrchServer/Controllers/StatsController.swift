import Foundation
import Hummingbird
import OrchModels

/// `GET /stats/tasks` (viewer): tasks finished per minute over the last hour, from the
/// in-memory ``TaskRollup`` (no store query); `core_id` narrows it to one core.
struct StatsController {
    let rollup: TaskRollup

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/stats/tasks", access: .role(.viewer)) { request, _ in
            let core = QueryParameters(request).string("core_id")
            return try .json(rollup.snapshot(coreID: core, now: Date()))
        }
    }
}
