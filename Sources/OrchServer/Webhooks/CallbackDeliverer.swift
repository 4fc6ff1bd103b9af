import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// Delivers task callbacks from the durable queue: POSTs the signed body, retries failures on
/// `schedule` (seconds after each failed attempt, with +-10 % jitter) and then gives up; a 410
/// answer gives up at once. Every attempt is a `webhook.delivered` or `webhook.failed` event on
/// the task with the status code and latency.
///
/// Before each attempt the URL's host is resolved and every address it has is checked
/// (``CallbackAddress``): unless the host is named in `ORCH_CALLBACK_ALLOWED_HOSTS`, a host with
/// an address inside the network is refused (`webhook.failed` with `reason` and `final`, no
/// retry), so a name that points inward is caught at delivery as a literal is at dispatch. The
/// request then goes to the address that was checked (the client's DNS override), not to a
/// second lookup that could answer differently. Redirects are not followed.
struct CallbackDeliverer: Service {
    let store: any Store
    let bus: EventBus
    /// The first secret signs (`X-Signature`); without secrets callbacks go unsigned.
    let secrets: [String]
    /// Waits after each failed attempt, in seconds; default 10, 60, 300, 1800, 7200.
    let schedule: [Int]
    /// Seconds an attempt may take.
    let timeout: Int
    /// `ORCH_CALLBACK_ALLOWED_HOSTS`: hosts delivered to whatever their address.
    let allowedHosts: [String]
    let logger: Logger
    /// Counts attempts by outcome (`orch_webhook_deliveries_total`).
    let metrics: OrchMetrics
    /// Attempts run at once.
    var batchSize = 32

    func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.clientConfiguration())
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

    /// No redirects: a receiver cannot send the server on to an address it would refuse.
    static func clientConfiguration(dnsOverride: [String: String] = [:]) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.dnsOverride = dnsOverride
        return configuration
    }

    /// Where an attempt may connect.
    enum Target {
        /// Through the shared client: the host is named in the allowed hosts, or an allowed literal.
        case direct
        /// To this address (checked), for the URL's host name.
        case address(String, host: String)
        /// Not at all: the reason.
        case refused(String)
    }

    /// Checks the URL's host and, for a name not in the allowed hosts, every address it resolves to.
    func target(of url: String) async -> Target {
        guard let host = Callback.host(ofURL: url) else { return .refused("the URL has no host") }
        if Callback.isNamed(host, in: allowedHosts) { return .direct }
        if let refusal = Callback.refusal(ofHost: host) { return .refused(refusal) }
        if CallbackAddress.literal(host) != nil { return .direct }
        let resolved = try? await NIOThreadPool.singleton.runIfActive { CallbackAddress.resolve(host) }
        switch resolved {
        case .success(let addresses):
            if let inward = addresses.first(where: CallbackAddress.isInternal) {
                return .refused(Callback.refusal(host: host, address: inward))
            }
            return .address(CallbackAddress.text(addresses[0]), host: host)
        case .failure(let error):
            return .refused("host \(host) does not resolve: \(error.message)")
        case nil:
            return .refused("host \(host) could not be resolved")
        }
    }

    /// Sends `request` and reads (and drops) up to 64 KiB of the answer; its status code.
    func send(_ request: HTTPClientRequest, through client: HTTPClient) async throws -> Int {
        let response = try await client.execute(request, timeout: .seconds(Int64(timeout)))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Int(response.status.code)
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
        var refusal: String?
        let target = await target(of: delivery.url)
        do {
            switch target {
            case .refused(let reason):
                refusal = reason
                throw CallbackRefused()
            case .direct:
                statusCode = try await send(request, through: client)
            case .address(let address, let host):
                let pinned = HTTPClient(
                    eventLoopGroupProvider: .singleton, configuration: Self.clientConfiguration(dnsOverride: [host: address]))
                do {
                    statusCode = try await send(request, through: pinned)
                } catch {
                    try? await pinned.shutdown()
                    throw error
                }
                try? await pinned.shutdown()
            }
        } catch is CallbackRefused {
            failure = refusal
        } catch {
            failure = String(describing: error)
        }
        let latency = (ContinuousClock.now - started)
        let milliseconds = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
        let attempt = delivery.attempts + 1
        let outcome: CallbackAttemptOutcome
        if let statusCode, (200..<300).contains(statusCode) {
            outcome = .delivered
        } else if refusal != nil || statusCode == 410 || attempt > schedule.count {
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
        if refusal != nil { data["reason"] = "address_refused" }
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

/// An attempt that was not made: its host is inside the network.
private struct CallbackRefused: Error {}
