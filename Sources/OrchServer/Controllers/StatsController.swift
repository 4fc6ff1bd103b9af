import Foundation
import Hummingbird
import OrchModels

/// What the dashboard's overview reads, kept in memory from the event bus (no store query):
/// `GET /stats/tasks` (viewer), tasks finished per minute over the last hour (``TaskRollup``;
/// `core_id` narrows it to one core), and `GET /alerts` (viewer), the firing alerts
/// (``AlertBoard``).
struct StatsController {
    let rollup: TaskRollup
    let alerts: AlertBoard

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/stats/tasks", access: .role(.viewer)) { request, _ in
            let core = QueryParameters(request).string("core_id")
            return try .json(rollup.snapshot(coreID: core, now: Date()))
        }
        api.on(.get, "/alerts", access: .role(.viewer)) { _, _ in
            try .json(AlertList(alerts: alerts.firing.map(\.apiValue)))
        }
    }
}
