import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OrchCore
import OrchModels
import Synchronization

/// The outermost middleware: gives every request its id, counts it, turns every error into
/// the reference's envelope (the only place errors become responses), records the request's
/// metrics and writes one structured log line per request at `info` (method, route template,
/// status, duration in milliseconds, request id and user).
///
/// - `X-Request-ID` is taken from the caller when it is 1-128 characters of
///   `[A-Za-z0-9._:-]` (anything else is replaced), otherwise a new `req-<uuid>`; it is echoed
///   on every response and written into every log line of the request.
/// - ``OrchError`` keeps its status and code. A 404 from the router becomes 405 with `Allow`
///   when the path exists with other methods. Anything unexpected is logged with the request id
///   and answered as a bare 500 `INTERNAL_ERROR`.
struct EnvelopeMiddleware: RouterMiddleware {
    typealias Context = OrchRequestContext

    let routes: @Sendable () -> RouteTable
    let requestCounter: RequestCounter
    let metrics: OrchMetrics
    /// Proxies whose `X-Forwarded-For` names the client (``OrchRequestContext/clientAddress``).
    var trustedProxies = AddressPatterns()

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let requestID = Self.requestID(from: request.headers[.xRequestID])
        context.requestID = requestID
        context.logger[metadataKey: "request_id"] = .string(requestID)
        if !trustedProxies.isEmpty, let peer = context.remoteAddress?.ipAddress {
            context.clientAddress = trustedProxies.clientAddress(
                peer: peer, forwardedFor: request.headers[values: .xForwardedFor])
        }
        requestCounter.increment()
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let orchError = Self.map(error, request: request, context: context, routes: routes())
            response = Self.envelope(orchError, requestID: requestID)
        }
        response.headers[.xRequestID] = requestID
        let duration = ContinuousClock.now - started
        let endpoint = endpoint(request, context: context)
        metrics.recordRequest(
            method: request.method.rawValue, endpoint: endpoint, status: response.status.code, duration: duration)
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)", "route": "\(endpoint)", "status": "\(response.status.code)",
                "duration_ms": "\((duration.seconds * 1000 * 100).rounded() / 100)",
                "user": "\(context.trace.user ?? "-")",
            ])
        return response
    }

    /// The route template the request matched (also for requests refused before routing), or
    /// `unmatched`.
    func endpoint(_ request: Request, context: Context) -> String {
        if let path = context.endpointPath, path != "NotFound" { return path }
        return routes().template(path: request.uri.path) ?? "unmatched"
    }

    /// Maps any error to the ``OrchError`` the client sees (5xx are logged here).
    static func map(_ error: any Error, request: Request, context: Context, routes: RouteTable) -> OrchError {
        switch error {
        case let error as OrchError:
            if error.status >= 500 {
                context.logger.error("request failed", metadata: ["code": "\(error.code)", "message": "\(error.message)"])
            }
            return error
        case let error as HTTPError where error.status == .notFound:
            let allowed = routes.allowedMethods(path: request.uri.path)
            if !allowed.isEmpty {
                return .methodNotAllowed(method: request.method.rawValue, path: request.uri.path, allowed: allowed)
            }
            return .notFound("No route for \(request.method.rawValue) \(request.uri.path)")
        case let error as RequestStreamError:
            return error.answer
        case is NIOTooManyBytesError:
            return .payloadTooLarge(limit: RequestBodyDecoding.maximumBodySize)
        case let error as any HTTPResponseError where error.status.code < 500:
            return .clientError(status: error.status.code, message: error.status.reasonPhrase)
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError
        }
    }

    /// The envelope response for `error`.
    static func envelope(_ error: OrchError, requestID: String) -> Response {
        let bytes = envelopeBody(error, requestID: requestID)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The envelope's JSON bytes for `error`.
    static func envelopeBody(_ error: OrchError, requestID: String) -> [UInt8] {
        let body = ErrorBody(
            error: .init(
                code: error.code.rawValue, message: error.message, details: error.details, requestID: requestID,
                timestamp: Date()))
        return (try? JSONWriter().encode(body)) ?? []
    }

    /// The caller's id when it is safe to echo and log, else a new one.
    static func requestID(from header: String?) -> String {
        if let header, (1...128).contains(header.count),
            header.unicodeScalars.allSatisfy({ scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", ".", "_", ":", "-": true
                default: false
                }
            })
        {
            return header
        }
        return Identifier.make("req")
    }
}

/// Counts requests for `/health`'s `total_requests`.
public final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    func increment() { count.add(1, ordering: .relaxed) }

    /// Requests received since start.
    public var value: Int { count.load(ordering: .relaxed) }
}

extension HTTPField.Name {
    static let xRequestID = HTTPField.Name("X-Request-ID")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
