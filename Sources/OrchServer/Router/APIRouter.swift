import Hummingbird
import OrchCore
import OrchModels

/// Registers routes with their access rule, so that authentication cannot be forgotten and the
/// route list (``RouteTable``) is always complete.
public final class APIRouter: @unchecked Sendable {
    public typealias Handler = @Sendable (Request, OrchRequestContext) async throws -> Response

    let router: Router<OrchRequestContext>
    let authenticator: Authenticator
    /// Told when a connection's request authenticated (it then no longer counts as anonymous).
    let connections: ConnectionTable?
    private(set) var routes: [APIRoute] = []

    init(router: Router<OrchRequestContext>, authenticator: Authenticator, connections: ConnectionTable? = nil) {
        self.router = router
        self.authenticator = authenticator
        self.connections = connections
    }

    /// Adds a route. For `.role` access the handler runs only after the caller's token is
    /// verified and their role checked; `context.identity` is then set. `acceptsQueryToken`
    /// lets the token come as `?access_token=` (for `EventSource`, which cannot send headers).
    func on(
        _ method: HTTPRequest.Method, _ path: String, access: Access, acceptsQueryToken: Bool = false,
        handler: @escaping Handler
    ) {
        routes.append(APIRoute(method: method, path: path, access: access))
        let authenticator = self.authenticator
        let connections = self.connections
        router.on(RouterPath(path), method: method) { request, context -> Response in
            guard case .role(let minimum) = access else { return try await handler(request, context) }
            var context = context
            context.identity = try await authenticator.authenticate(
                request, minimum: minimum, acceptsQueryToken: acceptsQueryToken, verified: context.verifiedToken)
            context.trace.user = context.identity?.username
            connections?.markAuthenticated(context.channel)
            return try await handler(request, context)
        }
    }

    /// The routes added so far.
    var table: RouteTable { RouteTable(routes: routes) }
}
