import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchCore
import OrchModels
import OrchStore

/// `POST /webhook`: signed events from external systems.
///
/// Order of checks: secrets configured (else 503), body at most 1 MiB (413), signature header
/// present and well formed and matching (401), timestamp within the tolerance (408), then a
/// replay (same timestamp and signature) answers the first answer without processing, then JSON
/// with an `event` (400). A signature is accepted over the exact body bytes or over the body
/// re-serialised as the reference's Python recipe does (``PythonJSON``).
struct WebhookController {
    let store: any Store
    let bus: EventBus
    let secrets: [String]
    /// Seconds a timestamp may differ from now (`ORCH_WEBHOOK_TOLERANCE`).
    let tolerance: Int
    /// Counts signature checks (`orch_webhook_signatures_verified_total`).
    let metrics: OrchMetrics

    /// Longest event name accepted.
    static let maximumEventLength = 1024

    /// The event names of task events a webhook may report (the wire names of these types).
    static let taskEvents: Set<String> = Set(
        [EventType.taskStarted, .taskProgress, .taskCompleted, .taskFailed, .taskCancelled].map(\.rawValue))

    func addRoutes(to api: APIRouter) {
        api.on(.post, "/webhook", access: .public, handler: receive)
    }

    @Sendable func receive(_ request: Request, context: OrchRequestContext) async throws -> Response {
        guard !secrets.isEmpty else {
            throw OrchError.serviceUnavailable("Webhooks are disabled: no secret is configured (set ORCH_WEBHOOK_SECRETS)")
        }
        let body = try await request.collectBody()
        guard let header = request.headers[.xSignature] else {
            metrics.recordSignatureCheck(verified: false)
            throw OrchError.authenticationRequired("Missing X-Signature header")
        }
        guard let signature = WebhookSignature(header: header) else {
            metrics.recordSignatureCheck(verified: false)
            throw OrchError.authenticationRequired("Malformed X-Signature header: expected t=<unix seconds>,v1=<hex>")
        }
        var candidates = [body]
        if let canonical = try? PythonJSON.canonical(body), canonical != body { candidates.append(canonical) }
        guard let matched = signature.verify(candidates: candidates, secrets: secrets) else {
            metrics.recordSignatureCheck(verified: false)
            throw OrchError.authenticationRequired("Invalid webhook signature")
        }
        metrics.recordSignatureCheck(verified: true)
        let now = Date()
        let skew = abs(now.timeIntervalSince1970 - Double(signature.timestamp))
        guard skew <= Double(tolerance) else {
            throw OrchError.timeout(
                "Webhook timestamp is \(Int(skew)) s from now (tolerance \(tolerance) s)",
                details: ["timestamp": .int(signature.timestamp), "tolerance": .int(Int64(tolerance))])
        }
        let key = "\(signature.timestampText).\(matched)"
        if let answer = try await store.webhookReceipt(key: key) { return Self.answer(answer) }

        let payload = try RequestBodyDecoding.strictObject(body)
        guard let event = payload["event"]?.stringValue, !event.isEmpty else { throw OrchError.missingParameter("event") }
        guard event.unicodeScalars.count <= Self.maximumEventLength else {
            throw OrchError.invalidParameter("event", "must be at most \(Self.maximumEventLength) characters")
        }
        let taskID = payload["task_id"]?.stringValue
        let change: (@Sendable (TaskRecord) throws -> TaskTransition)?
        if taskID != nil, Self.taskEvents.contains(event) {
            let update = try TaskRules.validated(Self.statusUpdate(event: event, payload: payload))
            change = { task in try TaskLifecycle.update(task, with: update, now: now) }
        } else {
            change = nil
        }
        let webhookID = Identifier.make("webhook")
        // The receipt check, the task's change, its events and the receipt are one transaction:
        // copies of one delivery arriving at once are applied exactly once.
        let recording = try await store.recordWebhook(
            key: key, taskID: taskID, coreID: payload["core_id"]?.stringValue, change: change, receivedAt: now,
            forgetBefore: now.addingTimeInterval(-Double(2 * tolerance)),
            event: { outcome in
                var data: [String: JSONValue] = [
                    "webhook_id": .string(webhookID), "event": .string(event), "payload": .object(payload),
                ]
                if let updated = outcome.taskUpdated { data["task_updated"] = .bool(updated) }
                return EventDraft(type: .webhookReceived, timestamp: now, data: data)
            },
            answer: { stored, outcome in
                let receipt = WebhookReceipt(
                    eventID: stored.apiValue.eventID, processedAt: now, webhookID: webhookID,
                    taskUpdated: outcome.taskUpdated, taskUpdateError: outcome.updateError)
                return String(decoding: try Timestamp.encoder.encode(receipt), as: UTF8.self)
            })
        bus.publish(recording.events)
        context.logger.info("webhook received", metadata: ["event": "\(event)", "webhook_id": "\(webhookID)"])
        return Self.answer(recording.answer)
    }

    /// The status update a task event stands for; `data` carries progress, message, result,
    /// error, duration and worker id.
    static func statusUpdate(event: String, payload: [String: JSONValue]) -> StatusUpdateRequest {
        let data = payload["data"]?.objectValue ?? [:]
        func number(_ key: String) -> Double? {
            switch data[key] {
            case .int(let value): Double(value)
            case .double(let value): value
            default: nil
            }
        }
        let message = data["message"]?.stringValue ?? data["output"]?.stringValue
        let worker = data["worker_id"]?.stringValue ?? payload["worker_id"]?.stringValue
        switch event {
        case "task.started":
            return StatusUpdateRequest(status: .running, message: message, workerID: worker)
        case "task.progress":
            let progress = number("progress").map { min(100, max(0, Int($0))) }
            return StatusUpdateRequest(status: .running, progress: progress, message: message, workerID: worker)
        case "task.completed":
            return StatusUpdateRequest(
                status: .completed, message: message, result: data["result"] ?? .object(data), duration: number("duration"))
        case "task.failed":
            return StatusUpdateRequest(
                status: .failed, message: message, error: data["error"] ?? message.map { .string($0) } ?? .object(data),
                duration: number("duration"))
        default:
            return StatusUpdateRequest(status: .cancelled, message: message)
        }
    }

    static func answer(_ json: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

extension HTTPField.Name {
    static let xSignature = HTTPField.Name("X-Signature")!
}

extension WebhookTaskOutcome {
    /// `task_updated` of the answer: `nil` when the webhook changes no task.
    var taskUpdated: Bool? {
        switch self {
        case .none: nil
        case .updated: true
        case .taskNotFound, .refused: false
        }
    }

    /// `task_update_error` of the answer.
    var updateError: String? {
        switch self {
        case .none, .updated: nil
        case .taskNotFound: "task_not_found"
        case .refused(let reason): reason
        }
    }
}
