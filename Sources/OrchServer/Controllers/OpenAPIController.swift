import Hummingbird

/// `GET /openapi.json` (public): ``OpenAPIDocument`` for the routes this server has.
struct OpenAPIController {
    func addRoutes(to api: APIRouter) {
        api.on(.get, "/openapi.json", access: .public) { [weak api] _, _ in
            guard let api else { throw HTTPError(.serviceUnavailable) }
            return try .json(OpenAPIDocument.make(routes: api.table))
        }
    }
}
