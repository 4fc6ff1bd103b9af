import HTTPTypes
import Hummingbird
import NIOCore

/// Which browser origins may call the API from their pages (`ORCH_CORS_ORIGINS`): exact
/// origins (`scheme://host[:port]`, compared case-insensitively, as browsers send them in
/// lowercase) or every origin (`*`). Empty: same origin only, and no CORS headers at all.
public struct CORSPolicy: Sendable, Equatable, CustomStringConvertible {
    public private(set) var origins: Set<String> = []
    public private(set) var allowsEveryOrigin = false

    public init() {}

    /// Parses `*` or comma-separated origins; nil for anything that is not an origin (a path,
    /// a missing scheme, a trailing slash).
    public init?(parsing text: String) {
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if item == "*" {
                allowsEveryOrigin = true
                continue
            }
            guard Self.isOrigin(item) else { return nil }
            origins.insert(item.lowercased())
        }
    }

    public var isEmpty: Bool { origins.isEmpty && !allowsEveryOrigin }

    public var description: String {
        allowsEveryOrigin ? "*" : origins.sorted().joined(separator: ",")
    }

    func allows(_ origin: String) -> Bool {
        allowsEveryOrigin ? Self.isOrigin(origin) : origins.contains(origin.lowercased())
    }

    /// `http(s)://host[:port]` and nothing more.
    static func isOrigin(_ text: String) -> Bool {
        let parts = text.split(separator: "://", maxSplits: 1)
        guard parts.count == 2, ["http", "https"].contains(parts[0].lowercased()) else { return false }
        let authority = parts[1]
        return !authority.isEmpty && authority.count <= 255
            && authority.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", ".", "-", ":", "[", "]": true
                default: false
                }
            }
    }
}

/// Cross-origin requests from browsers (CORS), outside every other middleware.
///
/// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
/// 204, before authentication, rate limits, the request log and the request metrics: it asks
/// whether a request may be sent and is not one. From an allowed origin it carries the API's
/// methods, the request headers clients send and a max age of 10 minutes; from any other origin
/// it carries no CORS header, so the browser refuses the request it asked about. Every other
/// response to an allowed origin carries `Access-Control-Allow-Origin` (the origin itself) and
/// exposes the headers a client reads; every response carries `Vary: Origin`, since it depends
/// on the origin.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: CORSPolicy

    static var allowedMethods: String { "GET, HEAD, POST, PUT, PATCH, DELETE" }
    static var allowedHeaders: String { "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID" }
    static var exposedHeaders: String {
        "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Window, Retry-After"
    }
    static var maximumAge: String { "600" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = policy.allows(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [.vary: "Origin", .contentLength: "0"]
            if allowed {
                headers[.accessControlAllowOrigin] = origin
                headers[.accessControlAllowMethods] = Self.allowedMethods
                headers[.accessControlAllowHeaders] = Self.allowedHeaders
                headers[.accessControlMaxAge] = Self.maximumAge
            }
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        response.headers[values: .vary].append("Origin")
        if allowed {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        }
        return response
    }
}
