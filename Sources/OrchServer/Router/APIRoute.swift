import HTTPTypes
import OrchModels

/// Who may call a route.
public enum Access: Sendable, Hashable {
    /// No credentials needed.
    case `public`
    /// A valid token whose user has at least this role (see `Role.satisfies`).
    case role(Role)
}

/// A route of the API: the single list that the router is built from, that answers 405s and
/// that the OpenAPI document is checked against.
public struct APIRoute: Sendable, Hashable {
    public var method: HTTPRequest.Method
    /// Path template with `{name}` captures, e.g. `/users/{user_id}`.
    public var path: String
    public var access: Access

    /// How many segments of the template are captures.
    var captures: Int { path.split(separator: "/").filter { $0.first == "{" }.count }

    /// Whether `requestPath` (already split into segments) matches this template.
    func matches(segments: [Substring]) -> Bool {
        let template = path.split(separator: "/")
        guard template.count == segments.count else { return false }
        return zip(template, segments).allSatisfy { pattern, segment in
            (pattern.first == "{" && pattern.last == "}") || pattern == segment
        }
    }
}

/// The routes the server has, for lookups that the router itself cannot answer.
public struct RouteTable: Sendable {
    public let routes: [APIRoute]

    /// The template of the first route matching `path`, whatever its method.
    func template(path: String) -> String? {
        let segments = path.split(separator: "/")
        return routes.first { $0.matches(segments: segments) }?.path
    }

    /// The methods allowed on `path`, empty when no route matches it at all. Where templates
    /// of several shapes match (`/tasks/cancel` and `/tasks/{task_id}`), the resource is the
    /// most literal one.
    func allowedMethods(path: String) -> [String] {
        let segments = path.split(separator: "/")
        let matching = routes.filter { $0.matches(segments: segments) }
        let fewest = matching.map(\.captures).min() ?? 0
        var methods = matching.filter { $0.captures == fewest }.map(\.method.rawValue)
        if methods.contains("GET") && !methods.contains("HEAD") { methods.append("HEAD") }
        return methods
    }
}
