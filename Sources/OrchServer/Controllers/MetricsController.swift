import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchStore

/// `GET /metrics` (viewer and up): Prometheus text format 0.0.4. The gauges describing the
/// current state (queues, running tasks, locks, waiters, process) are read fresh for each
/// scrape; counters and histograms accumulate from the server's start.
struct MetricsController {
    let store: any Store
    let locks: LockManager
    let metrics: OrchMetrics

    static let contentType = "text/plain; version=0.0.4"

    func addRoutes(to api: APIRouter) {
        api.on(.get, "/metrics", access: .role(.viewer), handler: scrape)
    }

    @Sendable func scrape(_ request: Request, context: OrchRequestContext) async throws -> Response {
        metrics.update(with: await SystemSample.take(store: store, locks: locks))
        return Response(
            status: .ok, headers: [.contentType: Self.contentType],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
    }
}
