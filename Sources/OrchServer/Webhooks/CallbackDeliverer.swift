import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// Delivers task callbacks from the durable queue: POSTs the signed body, retries failures on
/// `schedule` (seconds after each failed attempt, with +-10 % jitter) and then gives up; a 410
/// answer gives up at once. Every attempt is a `webhook.delivered` or `webhook.failed` event on
/// the task with the status code and latency.
struct CallbackDeliverer: Service {
    let store: any Store
    let bus: EventBus
    /// The first secret signs (`X-Signature`); without secrets callbacks go unsigned.
    let secrets: [String]
    /// Waits after each failed attempt, in seconds; default 10, 60, 300, 1800, 7200.
    let schedule: [Int]
    /// Seconds an attempt may take.
    let timeout: Int
    let logger: Logger
    /// Counts attempts by outcome (`orch_webhook_deliveries_total`).
    let metrics: OrchMetrics
    /// Attempts run at once.
    var batchSize = 32

    func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        await DeadlineLoop.run("callback deliverer", logger: logger) {
            let now = Date()
            let due = try await store.takeDueCallbacks(
                now: now, leaseUntil: now.addingTimeInterval(TimeInterval(timeout + 5)), limit: batchSize)
            await withTaskGroup(of: Void.self) { group in
                for delivery in due {
                    group.addTask { await attempt(delivery, client: client) }
                }
            }
            if due.count == batchSize { return now }
            return try await store.nextCallbackTime()
        }
        try? await client.shutdown()
    }

    func attempt(_ delivery: CallbackDelivery, client: HTTPClient) async {
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "orch-next/\(OrchVersion.current)")
        if let secret = secrets.first {
            let header = WebhookSignature.header(
                secret: secret, timestamp: Int64(Date().timeIntervalSince1970), body: delivery.body)
            request.headers.add(name: "X-Signature", value: header)
        }
        request.body = .bytes(ByteBuffer(bytes: delivery.body))
        let started = ContinuousClock.now
        var statusCode: Int?
        var failure: String?
        do {
            let response = try await client.execute(request, timeout: .seconds(Int64(timeout)))
            statusCode = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            failure = String(describing: error)
        }
        let latency = (ContinuousClock.now - started)
        let milliseconds = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
        let attempt = delivery.attempts + 1
        let outcome: CallbackAttemptOutcome
        if let statusCode, (200..<300).contains(statusCode) {
            outcome = .delivered
        } else if statusCode == 410 || attempt > schedule.count {
            outcome = .abandoned
        } else {
            let wait = Double(schedule[attempt - 1]) * Double.random(in: 0.9...1.1)
            outcome = .retry(at: Date().addingTimeInterval(wait))
        }
        var data: [String: JSONValue] = [
            "delivery_id": .string(delivery.id), "url": .string(delivery.url), "attempt": .int(Int64(attempt)),
            "status_code": statusCode.map { .int(Int64($0)) } ?? .null, "latency_ms": .double((milliseconds * 10).rounded() / 10),
        ]
        if let failure { data["error"] = .string(failure) }
        switch outcome {
        case .retry(let date): data["next_attempt_at"] = .string(Timestamp.format(date))
        case .abandoned: data["final"] = .bool(true)
        case .delivered: break
        }
        let type: EventType = outcome == .delivered ? .webhookDelivered : .webhookFailed
        switch outcome {
        case .delivered: metrics.recordCallbackAttempt(outcome: "delivered")
        case .retry: metrics.recordCallbackAttempt(outcome: "retry")
        case .abandoned: metrics.recordCallbackAttempt(outcome: "abandoned")
        }
        do {
            let event = try await store.recordCallbackAttempt(
                delivery, outcome: outcome, event: EventDraft(type: type, timestamp: Date(), data: data))
            bus.publish([event])
        } catch {
            logger.error("callback: recording an attempt failed", metadata: ["error": "\(error)"])
        }
    }
}
