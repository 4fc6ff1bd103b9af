import Foundation
import HTTPTypes
import Hummingbird
import OrchCore
import OrchModels

/// Per-minute request limits by role (`ORCH_RATE_LIMITS`), with GCRA (``RateLimiter``).
///
/// The caller is identified before routing from the bearer token (signature and expiry checked,
/// no database read): a valid token counts against its user with its role's limit; anything
/// else counts against the client's address under `anonymous`. Every response, errors
/// included, carries `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds when the
/// allowance is fully back) and `-Window`; over the limit the answer is 429
/// `RATE_LIMIT_EXCEEDED` with `Retry-After`. A role whose limit is 0 is unlimited and gets no
/// such headers.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = OrchRequestContext

    let limiter: RateLimiter
    /// Requests per window by role name and `anonymous`.
    let limits: [String: Int]
    let authenticator: Authenticator
    let routes: @Sendable () -> RouteTable
    let metrics: OrchMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let (key, role, limit) = await classify(request, context: &context)
        guard limit > 0 else { return try await next(request, context) }
        let decision = limiter.check(key: key, limit: limit, now: Self.monotonicSeconds())
        var headers = Self.headers(decision, window: Int(limiter.window))
        guard decision.allowed else {
            metrics.recordRateLimited(role: role)
            throw OrchError.rateLimited(
                "Rate limit exceeded", retryAfter: Int(decision.retryAfter.rounded(.up)),
                details: ["limit": .int(Int64(limit)), "window": .int(Int64(limiter.window))], headers: headers)
        }
        do {
            var response = try await next(request, context)
            for (name, value) in headers { response.headers[HTTPField.Name(name)!] = value }
            return response
        } catch {
            var mapped = EnvelopeMiddleware.map(error, request: request, context: context, routes: routes())
            mapped.headers.merge(headers) { current, _ in current }
            throw mapped
        }
    }

    /// The limit key, role name and limit of this request's caller; a verified token is kept
    /// in `context`. A user's login tokens share one allowance; API tokens share one allowance
    /// per user and role, so a machine token is limited as its role.
    func classify(_ request: Request, context: inout Context) async -> (key: String, role: String, limit: Int) {
        let acceptsQueryToken = request.uri.path == EventStreamController.path
        if let token = Authenticator.presentedToken(request, acceptsQueryToken: acceptsQueryToken),
            let verified = try? await authenticator.verify(token)
        {
            context.verifiedToken = verified
            let role = verified.role.rawValue
            return ("user:\(verified.userID):\(role)", role, limits[role] ?? 0)
        }
        let address = context.clientAddress
        return ("address:\(address)", "anonymous", limits["anonymous"] ?? 0)
    }

    static func headers(_ decision: RateLimiter.Decision, window: Int) -> [String: String] {
        let reset = Int((Date().timeIntervalSince1970 + decision.resetAfter).rounded(.up))
        return [
            "X-RateLimit-Limit": String(decision.limit), "X-RateLimit-Remaining": String(decision.remaining),
            "X-RateLimit-Reset": String(reset), "X-RateLimit-Window": String(window),
        ]
    }

    static func monotonicSeconds() -> Double {
        (ContinuousClock.now - ContinuousClock.Instant.zeroReference).seconds
    }
}
