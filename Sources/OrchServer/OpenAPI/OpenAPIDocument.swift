import HTTPTypes
import OrchCore
import OrchModels

/// `GET /openapi.json`: the API described in OpenAPI 3.0.3.
///
/// ``operations`` is the one place routes are documented; a test checks it against the router's
/// ``RouteTable`` both ways, so a route cannot go undocumented. Who may call each route comes
/// from the route table itself (the `security` requirement, the `x-required-role` extension and
/// the description's first line), and so do the error responses every route shares: 401 and
/// 403 for routes behind a role, 400, 408 and 413 for routes with a body, 400 for routes with
/// parameters, 404 for routes with a path parameter, and 429 (rate limits), 431 (header limits)
/// and 503 (storage faults, shutdown) everywhere.
enum OpenAPIDocument {
    /// One documented route.
    struct Operation {
        var method: HTTPRequest.Method
        var path: String
        var summary: String
        var description: String = ""
        var query: [Parameter] = []
        var headers: [Parameter] = []
        /// The request body's schema name, when the route takes JSON.
        var body: String?
        var bodyRequired = true
        /// Status code to (description, schema name or content).
        var responses: [Int: Response]
        /// Further error statuses this route can answer (beyond the shared ones).
        var errors: [Int: String] = [:]
    }

    struct Parameter {
        var name: String
        var schema: JSONValue
        var description: String
        var required = false
    }

    enum Response {
        case json(String, schema: String)
        case text(String, contentType: String)
        /// `text/event-stream`: each event's fields (`data` is an ``Event`` as JSON).
        case eventStream(String)
        case empty(String)
    }

    static func query(_ name: String, _ schema: JSONValue, _ description: String) -> Parameter {
        Parameter(name: name, schema: schema, description: description)
    }

    static func limitOffset(_ range: ClosedRange<Int>, _ defaultLimit: Int) -> [Parameter] {
        [
            query("limit", Schema.integer(range, default: defaultLimit), "Page size."),
            query("offset", Schema.integer(0...Int(Int32.max), default: 0), "Items to skip."),
        ]
    }

    static var operations: [Operation] {
        [
            Operation(
                method: .get, path: "/health", summary: "Health of the server and its components",
                responses: [
                    200: .json("Every component is healthy", schema: "Health"),
                    503: .json("A component is unhealthy (same body)", schema: "Health"),
                ]),
            Operation(
                method: .get, path: "/metrics", summary: "Prometheus metrics (text format 0.0.4)",
                responses: [200: .text("The metrics", contentType: MetricsController.contentType)]),
            Operation(
                method: .get, path: "/openapi.json", summary: "This document",
                responses: [200: .text("OpenAPI 3.0.3 document", contentType: "application/json")]),
            Operation(
                method: .post, path: "/auth/login", summary: "Exchange a username and password for an access token",
                description: "Repeated failures are slowed down, then refused with 429 for a while.",
                body: "LoginRequest", responses: [200: .json("Signed in", schema: "LoginResponse")],
                errors: [401: "Wrong username or password, or an inactive user"]),
            Operation(
                method: .get, path: "/auth/me", summary: "The caller's account",
                responses: [200: .json("The account", schema: "User")]),
            Operation(
                method: .post, path: "/auth/tokens", summary: "Create a long-lived API token",
                description: "Needs a login token (an API token cannot create tokens). The role may be any for an admin, else one the caller's role satisfies.",
                body: "CreateAPITokenRequest",
                responses: [201: .json("Created; `token` is shown only now", schema: "CreatedAPIToken")]),
            Operation(
                method: .get, path: "/auth/tokens", summary: "The caller's API tokens (an admin: everyone's)",
                query: [query("user_id", Schema.string, "Admins: only this user's tokens.")],
                responses: [200: .json("Tokens, without secrets", schema: "APITokenList")]),
            Operation(
                method: .delete, path: "/auth/tokens/{token_id}", summary: "Revoke an API token at once",
                responses: [204: .empty("Revoked")]),
            Operation(
                method: .post, path: "/users", summary: "Create a user", body: "CreateUserRequest",
                responses: [201: .json("Created", schema: "User")],
                errors: [409: "Username or email taken"]),
            Operation(
                method: .get, path: "/users", summary: "List users",
                query: [
                    query("role", OpenAPIComponents.role, "Only this role."),
                    query("is_active", Schema.boolean, "Only active (or inactive) users."),
                ] + limitOffset(1...UserController.maximumPageSize, 50),
                responses: [200: .json("A page of users", schema: "UserList")]),
            Operation(
                method: .get, path: "/users/{user_id}", summary: "One user",
                responses: [200: .json("The user", schema: "User")]),
            Operation(
                method: .patch, path: "/users/{user_id}", summary: "Change a user", body: "UpdateUserRequest",
                responses: [200: .json("The changed user", schema: "User")],
                errors: [409: "Email taken, or the last active admin would be demoted or deactivated"]),
            Operation(
                method: .post, path: "/dispatch", summary: "Dispatch a task to a core",
                headers: [
                    Parameter(
                        name: "Idempotency-Key", schema: Schema.string(length: 1...255, pattern: "^[!-~]+$"),
                        description: "Repeats within 24 h answer the original task with 200.")
                ],
                body: "DispatchRequest",
                responses: [
                    202: .json("Queued", schema: "DispatchResponse"),
                    200: .json("The task an earlier request with this Idempotency-Key created", schema: "DispatchResponse"),
                ],
                errors: [409: "The Idempotency-Key was used with a different request"]),
            Operation(
                method: .post, path: "/dispatch/batch", summary: "Dispatch up to 1,000 tasks at once",
                description: """
                    All or nothing: every task is validated as `POST /dispatch` validates it (an error names \
                    the task, e.g. `tasks[3].priority`), then all are stored in one transaction. Each is \
                    answered as `POST /dispatch` answers it, in request order; queue positions are as if the \
                    tasks had been dispatched one after another. Bodies up to 16 MiB. `Idempotency-Key` is \
                    refused (400).
                    """,
                body: "DispatchBatchRequest",
                responses: [202: .json("Queued, in request order", schema: "DispatchBatchResponse")]),
            Operation(
                method: .get, path: "/tasks", summary: "List tasks",
                query: [
                    query("status", OpenAPIComponents.taskStatus, "Only this status."),
                    query("core_id", Schema.string, "Only this core."),
                    query("priority", Schema.integer(1...10), "Only this priority."),
                    query("sort", Schema.enumeration(["created_at", "updated_at", "priority"]), "Sort field (default created_at)."),
                    query("order", Schema.enumeration(["asc", "desc"]), "Sort order (default desc)."),
                ] + limitOffset(1...TaskController.maximumTaskPage, 50),
                responses: [200: .json("A page of tasks", schema: "TaskList")]),
            Operation(
                method: .get, path: "/tasks/{task_id}", summary: "One task",
                responses: [200: .json("The task", schema: "Task")]),
            Operation(
                method: .post, path: "/tasks/cancel", summary: "Cancel every task matching a filter",
                description: "In batches of \(TaskController.bulkBatchSize) tasks, each its own transaction. Finished tasks are skipped. `dry_run` only counts.",
                body: "BulkTaskRequest", responses: [200: .json("How many matched, were cancelled, were skipped", schema: "BulkCancelResponse")]),
            Operation(
                method: .post, path: "/tasks/retry", summary: "Retry every failed or cancelled task matching a filter",
                description: "As POST /tasks/{task_id}/retry for each; other statuses are skipped. `dry_run` only counts.",
                body: "BulkTaskRequest", responses: [200: .json("How many matched, were retried, were skipped", schema: "BulkRetryResponse")]),
            Operation(
                method: .post, path: "/tasks/{task_id}/retry", summary: "Retry a failed or cancelled task",
                description: "Back in the queue at once with a fresh attempt budget; its history stays (`task.requeued`, reason `manual`).",
                responses: [200: .json("The task, queued", schema: "Task")],
                errors: [409: "The task is neither failed nor cancelled"]),
            Operation(
                method: .get, path: "/jobs/{task_id}/events", summary: "A task's events, oldest first",
                query: [
                    query("event_type", Schema.string, "Only this event type."),
                    query("since", Schema.dateTime, "Only events after this time (exclusive)."),
                ] + limitOffset(1...TaskController.maximumEventPage, 100),
                responses: [200: .json("A page of events", schema: "EventList")]),
            Operation(
                method: .put, path: "/jobs/{task_id}/status", summary: "Report a task's progress or outcome",
                body: "StatusUpdateRequest", responses: [200: .json("Updated", schema: "StatusUpdateResponse")],
                errors: [409: "The task cannot make this move (finished, or another worker's lease)"]),
            Operation(
                method: .post, path: "/schedules", summary: "Create a recurring schedule",
                description: "Each slot of `cron` (5 fields or a macro, in `timezone`) or `every` dispatches one task, also with several nodes; after downtime the missed slots fire once.",
                body: "CreateScheduleRequest", responses: [201: .json("The schedule", schema: "Schedule")],
                errors: [409: "The name is taken"]),
            Operation(
                method: .get, path: "/schedules", summary: "Schedules, by name",
                query: limitOffset(1...ScheduleController.maximumPage, 50),
                responses: [200: .json("A page of schedules", schema: "ScheduleList")]),
            Operation(
                method: .get, path: "/schedules/{schedule_id}", summary: "One schedule",
                responses: [200: .json("The schedule", schema: "Schedule")]),
            Operation(
                method: .patch, path: "/schedules/{schedule_id}", summary: "Change, pause or resume a schedule",
                description: "A new timing counts from now; resuming does not fire the slots passed while paused.",
                body: "UpdateScheduleRequest", responses: [200: .json("The schedule", schema: "Schedule")],
                errors: [409: "The name is taken"]),
            Operation(
                method: .delete, path: "/schedules/{schedule_id}", summary: "Delete a schedule (its tasks stay)",
                responses: [204: .empty("Deleted")]),
            Operation(
                method: .get, path: "/cores", summary: "Every core: counts, settings, workers",
                description: "Cores with tasks, settings, or workers seen in the last minute, by id.",
                responses: [200: .json("The cores", schema: "CoreList")]),
            Operation(
                method: .get, path: "/stats/tasks", summary: "Tasks finished per minute over the last hour",
                description: "Completed and finally failed tasks and the 95th percentile run time (the bound of its histogram bucket) per minute, oldest first, from a rollup each node keeps as tasks finish.",
                query: [query("core_id", Schema.string, "Only this core's tasks.")],
                responses: [200: .json("The last hour", schema: "TaskStats")]),
            Operation(
                method: .get, path: "/alerts", summary: "The firing system alerts",
                description: "The latest `system.alert` with state `firing` of each alert (kind and core) until one with state `resolved` follows, newest first; raised since this node started.",
                responses: [200: .json("The firing alerts", schema: "AlertList")]),
            Operation(
                method: .get, path: "/cores/{core_id}", summary: "One core",
                responses: [200: .json("The core", schema: "Core")]),
            Operation(
                method: .patch, path: "/cores/{core_id}", summary: "Pause, resume or cap a core",
                description: "A paused core takes dispatches but hands out nothing; `max_running` caps its running tasks over every node (`null` removes the cap). Resuming wakes waiting claims at once.",
                body: "CoreUpdateRequest", responses: [200: .json("The core, changed", schema: "Core")]),
            Operation(
                method: .post, path: "/cores/{core_id}/claim", summary: "Claim queued tasks of a core (long-poll)",
                body: "ClaimRequest",
                responses: [
                    200: .json("Claimed tasks, now running, with their leases", schema: "ClaimResponse"),
                    204: .empty("Nothing to claim within `wait`"),
                ]),
            Operation(
                method: .post, path: "/jobs/{task_id}/heartbeat", summary: "Extend a running task's lease",
                body: "HeartbeatRequest", responses: [200: .json("Lease extended", schema: "HeartbeatResponse")],
                errors: [409: "Not running, or the lease is another worker's"]),
            Operation(
                method: .get, path: "/sse/events", summary: "Live events (Server-Sent Events)",
                description: "Frames `id: <sequence>` and `data: <event JSON>`; heartbeats without an id. Resume with `Last-Event-ID`.",
                query: [
                    query("filter", Schema.string, "Comma-separated event types; `task.*` matches a prefix."),
                    query("task_id", Schema.string, "Only this task's events."),
                    query("core_id", Schema.string, "Only this core's events."),
                    query("last_event_id", lastEventID, "Resume after this event (as `Last-Event-ID`)."),
                    query("access_token", Schema.string, "The token, for clients that cannot send headers."),
                ],
                headers: [Parameter(name: "Last-Event-ID", schema: lastEventID, description: "Resume after this event.")],
                responses: [200: .eventStream("The event stream")]),
            Operation(
                method: .post, path: "/locks", summary: "Acquire or renew a lock, waiting up to `timeout`",
                body: "LockRequest", responses: [200: .json("Granted", schema: "LockGrant")],
                errors: [408: "Not granted within `timeout`", 409: "Held by another owner (with `timeout` 0)"]),
            Operation(
                method: .delete, path: "/locks/{resource}", summary: "Release a lock",
                query: [
                    Parameter(
                        name: "owner", schema: Schema.string(length: LockRules.ownerLength), description: "The holder.",
                        required: true),
                    query("force", Schema.boolean, "Admins: release whoever holds it (`owner` need not match)."),
                ],
                responses: [200: .json("Released", schema: "LockRelease")]),
            Operation(
                method: .get, path: "/locks", summary: "Held locks and the wait queue",
                query: [
                    query("resource", Schema.string, "Only this resource."),
                    query("owner", Schema.string, "Only this owner."),
                    query("expired", Schema.boolean, "Also locks that expired in the last hour."),
                ],
                responses: [200: .json("Locks", schema: "LockList")]),
            Operation(
                method: .post, path: "/webhook", summary: "Receive a signed event from an external system",
                description: "Signed with `X-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`; replays answer the first answer.",
                headers: [
                    Parameter(
                        name: "X-Signature", schema: Schema.string, description: "t=<unix seconds>,v1=<hex>",
                        required: true)
                ],
                body: "WebhookRequest", responses: [200: .json("Received", schema: "WebhookReceipt")],
                errors: [
                    401: "Missing or wrong signature", 408: "Timestamp outside the tolerance",
                    503: "No webhook secret is configured",
                ]),
        ]
    }

    static let lastEventID = Schema.string(length: 1...24, pattern: "^(event-)?[0-9]{1,18}$")

    /// The document for the routes in `routes`.
    static func make(routes: RouteTable) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for operation in operations {
            let access = routes.routes.first { $0.method == operation.method && $0.path == operation.path }?.access
            paths[operation.path, default: [:]][operation.method.rawValue.lowercased()] = describe(
                operation, access: access ?? .public)
        }
        var responses: [String: JSONValue] = [:]
        for (status, description) in sharedErrors {
            responses[String(status)] = [
                "description": .string(description),
                "content": ["application/json": ["schema": Schema.ref("Error")]],
            ]
        }
        return [
            "openapi": "3.0.3",
            "info": [
                "title": "ORCH-Next",
                "version": .string(OrchVersion.current),
                "description": """
                    Task orchestration: dispatch tasks to named worker queues (cores), claim and finish them \
                    over HTTP, stream events, lock resources. Roles rank viewer < operator < admin; system is a \
                    service role with an operator's rights and no user management. Every error uses the \
                    `Error` envelope. No text in a request body may contain U+0000 (400 VALIDATION_ERROR): \
                    PostgreSQL cannot store it, so neither backend does.
                    """,
            ],
            "servers": [["url": "/"]],
            "paths": .object(paths.mapValues(JSONValue.object)),
            "components": [
                "schemas": .object(OpenAPIComponents.schemas),
                "responses": .object(responses),
                "securitySchemes": [
                    "bearer": [
                        "type": "http", "scheme": "bearer", "bearerFormat": "JWT or orch_ API token",
                        "description": "A login token from POST /auth/login or an API token from POST /auth/tokens.",
                    ]
                ],
            ],
        ]
    }

    static let sharedErrors: [Int: String] = [
        400: "Invalid request (VALIDATION_ERROR, INVALID_PARAMETER, MISSING_PARAMETER)",
        401: "Missing or invalid credentials (AUTHENTICATION_REQUIRED, INVALID_TOKEN)",
        403: "The caller's role is too low (INSUFFICIENT_PERMISSIONS)",
        404: "No such resource (RESOURCE_NOT_FOUND)",
        408: "The request body stalled longer than ORCH_BODY_TIMEOUT (TIMEOUT)",
        413: "Request body too large",
        429: "Rate limit exceeded (RATE_LIMIT_EXCEEDED), with Retry-After",
        431: "Request line and headers larger than ORCH_MAX_HEADER_BYTES",
        503: "The storage is full, failing or gone, or the server is shutting down (SERVICE_UNAVAILABLE)",
    ]

    static func describe(_ operation: Operation, access: Access) -> JSONValue {
        let pathParameters = operation.path.split(separator: "/").filter { $0.first == "{" }.map {
            String($0.dropFirst().dropLast())
        }
        var parameters: [JSONValue] = pathParameters.map { name in
            [
                "name": .string(name), "in": "path", "required": true,
                "schema": name == "core_id" ? OpenAPIComponents.coreID : Schema.string(length: 1...256),
            ]
        }
        parameters += operation.query.map { parameter in
            [
                "name": .string(parameter.name), "in": "query", "required": .bool(parameter.required),
                "schema": parameter.schema, "description": .string(parameter.description),
            ]
        }
        parameters += operation.headers.map { parameter in
            [
                "name": .string(parameter.name), "in": "header", "required": .bool(parameter.required),
                "schema": parameter.schema, "description": .string(parameter.description),
            ]
        }

        var responses: [String: JSONValue] = [:]
        for (status, response) in operation.responses {
            switch response {
            case .json(let description, let schema):
                responses[String(status)] = [
                    "description": .string(description),
                    "content": ["application/json": ["schema": Schema.ref(schema)]],
                ]
            case .text(let description, let contentType):
                responses[String(status)] = [
                    "description": .string(description),
                    "content": [.init(stringLiteral: contentType): ["schema": Schema.string]],
                ]
            case .eventStream(let description):
                responses[String(status)] = [
                    "description": .string(description),
                    "content": [
                        "text/event-stream": [
                            "schema": Schema.object(
                                [
                                    "id": Schema.string, "event": Schema.string, "retry": Schema.integer(),
                                    "data": ["type": "string", "description": "An Event (or a heartbeat) as JSON."],
                                ], required: [])
                        ]
                    ],
                ]
            case .empty(let description):
                responses[String(status)] = ["description": .string(description)]
            }
        }
        var shared: Set<Int> = [429, 431, 503]
        if case .role = access { shared.formUnion([401, 403]) }
        if operation.body != nil { shared.formUnion([400, 408, 413]) }
        if !parameters.isEmpty { shared.insert(400) }
        if !pathParameters.isEmpty { shared.insert(404) }
        for status in shared where responses[String(status)] == nil {
            responses[String(status)] = ["$ref": .string("#/components/responses/\(status)")]
        }
        for (status, description) in operation.errors {
            responses[String(status)] = [
                "description": .string(description),
                "content": ["application/json": ["schema": Schema.ref("Error")]],
            ]
        }

        let who: String
        var object: [String: JSONValue] = [
            "summary": .string(operation.summary),
            "operationId": .string(operationID(operation)),
            "responses": .object(responses),
        ]
        switch access {
        case .public:
            who = operation.path == "/webhook" ? "Public; authenticated by its HMAC signature." : "Public."
            object["security"] = []
        case .role(let role):
            who = role == .system ? "Requires the system role." : "Requires the \(role.rawValue) role or higher."
            object["security"] = [["bearer": []]]
            object["x-required-role"] = .string(role.rawValue)
        }
        object["description"] = .string(operation.description.isEmpty ? who : "\(who)\n\n\(operation.description)")
        if !parameters.isEmpty { object["parameters"] = .array(parameters) }
        if let body = operation.body {
            object["requestBody"] = [
                "required": .bool(operation.bodyRequired),
                "content": ["application/json": ["schema": Schema.ref(body)]],
            ]
        }
        return .object(object)
    }

    /// `getJobsTaskIdEvents`-style ids.
    static func operationID(_ operation: Operation) -> String {
        let words = operation.path.split(whereSeparator: { "/{}_.-".contains($0) }).map { word in
            word.prefix(1).uppercased() + word.dropFirst()
        }
        return operation.method.rawValue.lowercased() + words.joined()
    }
}
