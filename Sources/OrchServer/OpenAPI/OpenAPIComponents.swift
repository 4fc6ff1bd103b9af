import OrchCore
import OrchModels

/// The schemas of ``OpenAPIDocument``, one per wire type in OrchModels. Ranges come from the
/// rules the server enforces (``TaskRules``, ``LockRules``, ``UserRules``), so the document
/// cannot drift from them.
enum OpenAPIComponents {
    static let taskStatus = Schema.enumeration(TaskStatus.allCases.map(\.rawValue))
    static let role = Schema.enumeration(Role.allCases.map(\.rawValue))
    static let coreID = Schema.string(
        length: TaskRules.coreIDLength, pattern: "^[A-Za-z0-9_.:-]+$", description: "A worker queue name.")
    static let workerID = Schema.string(length: TaskRules.workerIDLength)
    /// What ``UserRules`` accepts: printable ASCII without `@` locally, then dot-separated
    /// letter-digit-hyphen labels.
    static let email = Schema.string(
        length: 3...UserRules.maxEmailLength,
        pattern: "^[!-?A-~]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        description: "An address: local part of printable ASCII, a domain of at least two labels.")

    static var schemas: [String: JSONValue] {
        [
            "Error": Schema.record(
                [
                    "error": Schema.record([
                        "code": Schema.enumeration(
                            OrchError.Code.allCases.map(\.rawValue), description: "Machine-readable error code."),
                        "message": Schema.string,
                        "details": Schema.anyObject,
                        "request_id": Schema.string,
                        "timestamp": Schema.dateTime,
                    ])
                ], description: "The error envelope every error response uses."),
            "Pagination": Schema.record([
                "limit": Schema.integer(), "offset": Schema.integer(), "has_more": Schema.boolean,
            ]),
            "Health": Schema.record([
                "status": Schema.enumeration(["healthy", "unhealthy"]),
                "timestamp": Schema.dateTime,
                "version": Schema.string,
                "components": [
                    "type": "object", "additionalProperties": Schema.enumeration(["healthy", "unhealthy"]),
                    "description": "database, lock_manager, monitor, security",
                ],
                "metrics": Schema.record([
                    "uptime_seconds": Schema.integer(), "total_requests": Schema.integer(),
                    "active_tasks": Schema.integer(), "active_locks": Schema.integer(),
                ]),
                "node": Schema.record(
                    [
                        "id": Schema.string,
                        "leader": Schema.boolean,
                        "listener": Schema.enumeration(
                            ["connected", "disconnected", "none"],
                            description: "Whether this node hears the database's other nodes (none: SQLite, one node)."),
                    ], description: "The node that answered (ORCH_NODE_ID), whether it leads the database's nodes (always on SQLite) and hears them."),
            ]),
            "LoginRequest": Schema.request(
                ["username": Schema.string, "password": Schema.string], required: ["username", "password"]),
            "LoginResponse": Schema.record([
                "access_token": Schema.string,
                "token_type": Schema.enumeration(["bearer"]),
                "expires_in": Schema.integer(description: "Seconds until the token expires."),
                "user": Schema.record([
                    "user_id": Schema.string, "username": Schema.string, "email": Schema.string, "role": role,
                ]),
            ]),
            "User": Schema.record([
                "user_id": Schema.string, "username": Schema.string, "email": Schema.string, "role": role,
                "created_at": Schema.dateTime, "last_login": Schema.nullable(Schema.dateTime),
                "is_active": Schema.boolean, "metadata": Schema.anyObject,
            ]),
            "CreateUserRequest": Schema.request(
                [
                    "username": Schema.string(length: UserRules.usernameLength, pattern: "^[A-Za-z0-9_.-]+$"),
                    "email": email,
                    "password": Schema.string(length: 8...72, description: "8 to 72 characters (Unicode code points, as minLength and maxLength count them)."),
                    "role": role,
                    "metadata": Schema.anyObject,
                ], required: ["username", "email", "password", "role"]),
            "UpdateUserRequest": Schema.request(
                [
                    "email": email, "role": role, "is_active": Schema.boolean,
                    "password": Schema.string(length: 8...72),
                ], required: [], description: "Only the given fields change."),
            "UserList": Schema.record([
                "total_users": Schema.integer(), "users": Schema.array(Schema.ref("User")),
                "pagination": Schema.ref("Pagination"),
            ]),
            "CreateAPITokenRequest": Schema.request(
                [
                    "name": Schema.string(length: 1...100),
                    "role": role,
                    "expires_in": Schema.integer(
                        60...APITokens.maximumLifetime, description: "Lifetime in seconds; absent or null for none."),
                ], required: ["name"]),
            "APIToken": Schema.record(apiTokenProperties),
            "CreatedAPIToken": Schema.record(
                apiTokenProperties.merging(["token": Schema.string]) { $1 },
                description: "The token's secret (`token`) is shown only here."),
            "APITokenList": Schema.record([
                "total_tokens": Schema.integer(), "tokens": Schema.array(Schema.ref("APIToken")),
            ]),
            "DispatchRequest": dispatchRequest,
            "DispatchResponse": Schema.record([
                "task_id": Schema.string, "status": taskStatus, "core_id": Schema.string,
                "priority": Schema.integer(), "timeout": Schema.integer(), "created_at": Schema.dateTime,
                "estimated_start": Schema.dateTime, "queue_position": Schema.integer(), "run_at": Schema.dateTime,
            ]),
            "DispatchBatchRequest": Schema.request(
                [
                    "tasks": [
                        "type": "array", "items": Schema.ref("DispatchRequest"), "minItems": 1,
                        "maxItems": .int(Int64(DispatchController.maximumBatch)),
                    ]
                ], required: ["tasks"]),
            "DispatchBatchResponse": Schema.record(["tasks": Schema.array(Schema.ref("DispatchResponse"))]),
            "Task": Schema.record(taskProperties),
            "RetryPolicy": retryPolicy,
            "Core": Schema.record([
                "core_id": Schema.string, "queued": Schema.integer(), "scheduled": Schema.integer(),
                "running": Schema.integer(), "paused": Schema.boolean,
                "max_running": Schema.nullable(Schema.integer()), "active_workers": Schema.integer(),
                "oldest_queued_at": Schema.nullable(Schema.dateTime), "oldest_queued_age": Schema.nullable(Schema.number),
            ]),
            "ScheduleTaskTemplate": Schema.request(
                [
                    "priority": Schema.integer(TaskRules.priorities, default: 1),
                    "timeout": Schema.integer(TaskRules.timeouts, default: 300),
                    "stay": Schema.boolean,
                    "max_attempts": Schema.integer(TaskRules.maxAttemptsRange, default: 3),
                    "retry_policy": Schema.ref("RetryPolicy"),
                    "metadata": Schema.anyObject,
                ], required: [], description: "Each firing's task; its metadata also gets schedule_id."),
            "CreateScheduleRequest": exactlyOne(of: ["cron", "every"], in: Schema.request(
                [
                    "name": Schema.string(length: ScheduleLifecycle.nameLength), "core_id": coreID,
                    "cron": Schema.string, "every": ["type": "string", "pattern": "^([1-9][0-9]{0,8}[smhd]){1,4}$", "description": "1s to 366d"],
                    "timezone": ["type": "string", "default": "UTC", "description": "An IANA zone name."],
                    "task": Schema.ref("ScheduleTaskTemplate"), "paused": Schema.boolean,
                ], required: ["name", "core_id"], description: "Give cron or every, not both.")),
            "UpdateScheduleRequest": Schema.request(
                [
                    "name": Schema.string(length: ScheduleLifecycle.nameLength), "core_id": coreID,
                    "cron": Schema.string, "every": ["type": "string", "pattern": "^([1-9][0-9]{0,8}[smhd]){1,4}$", "description": "1s to 366d"],
                    "timezone": Schema.string, "task": Schema.ref("ScheduleTaskTemplate"), "paused": Schema.boolean,
                ], required: [], description: "cron or every replaces the timing (the other is dropped)."),
            "Schedule": Schema.record([
                "schedule_id": Schema.string, "name": Schema.string, "core_id": Schema.string,
                "cron": Schema.nullable(Schema.string), "every": Schema.nullable(Schema.string),
                "timezone": Schema.string, "task": Schema.ref("ScheduleTaskTemplate"), "paused": Schema.boolean,
                "created_at": Schema.dateTime, "updated_at": Schema.dateTime,
                "next_run_at": Schema.nullable(Schema.dateTime), "last_run_at": Schema.nullable(Schema.dateTime),
                "last_task_id": Schema.nullable(Schema.string),
            ]),
            "ScheduleList": Schema.record([
                "total_schedules": Schema.integer(), "schedules": Schema.array(Schema.ref("Schedule")),
                "pagination": Schema.ref("Pagination"),
            ]),
            "BulkTaskRequest": Schema.request(
                [
                    "core_id": coreID, "status": taskStatus, "priority": Schema.integer(TaskRules.priorities),
                    "created_before": Schema.dateTime, "created_after": Schema.dateTime,
                    "task_ids": [
                        "type": "array", "items": Schema.string, "maxItems": .int(Int64(TaskController.maximumBulkIDs)),
                    ],
                    "dry_run": Schema.boolean,
                ], required: [], description: "Every filter given must hold; none matches every task."),
            "BulkCancelResponse": bulkResponse("cancelled"),
            "BulkRetryResponse": bulkResponse("retried"),
            "CoreList": Schema.record(["cores": Schema.array(Schema.ref("Core"))]),
            "AlertList": Schema.record(["alerts": Schema.array(Schema.ref("Event"))]),
            "TaskStats": Schema.record([
                "core_id": Schema.nullable(Schema.string), "window_minutes": Schema.integer(),
                "completed": Schema.integer(), "failed": Schema.integer(), "p95_seconds": Schema.nullable(Schema.number),
                "minutes": Schema.array(Schema.record([
                    "minute": Schema.dateTime, "completed": Schema.integer(), "failed": Schema.integer(),
                    "p95_seconds": Schema.nullable(Schema.number),
                ])),
            ]),
            "CoreUpdateRequest": Schema.request(
                [
                    "paused": Schema.boolean,
                    "max_running": Schema.integer(1...CoreController.maximumRunningCap),
                ], required: [], description: "The fields given change; `max_running: null` removes the cap."),
            "TaskList": Schema.record([
                "total_tasks": Schema.integer(), "tasks": Schema.array(Schema.ref("Task")),
                "pagination": Schema.ref("Pagination"),
            ]),
            "Event": Schema.object(
                [
                    "event_id": Schema.string, "task_id": Schema.nullable(Schema.string), "event_type": Schema.string,
                    "timestamp": Schema.dateTime, "data": Schema.anyObject,
                ], required: ["event_id", "event_type", "timestamp", "data"]),
            "EventList": Schema.record([
                "task_id": Schema.string, "total_events": Schema.integer(), "events": Schema.array(Schema.ref("Event")),
                "pagination": Schema.ref("Pagination"),
            ]),
            "StatusUpdateRequest": Schema.request(
                [
                    "status": Schema.enumeration(["running", "completed", "failed", "cancelled"]),
                    "progress": Schema.integer(TaskRules.progressRange),
                    "message": Schema.string(length: TaskRules.messageLength),
                    "metadata": Schema.anyObject,
                    "result": Schema.any,
                    "error": Schema.any,
                    "lease_token": Schema.string,
                    "worker_id": workerID,
                    "duration": Schema.number,
                    "retry": Schema.boolean,
                ], required: ["status"],
                description: "A `failed` with the current `lease_token` is retried while attempts remain; `retry: false` makes it final."),
            "StatusUpdateResponse": Schema.record([
                "status": Schema.enumeration(["updated"]), "task_id": Schema.string, "updated_at": Schema.dateTime,
                "event_id": Schema.string,
            ]),
            "ClaimRequest": Schema.request(
                [
                    "worker_id": workerID,
                    "wait": Schema.integer(TaskRules.claimWait, default: 0, description: "Seconds to long-poll."),
                    "lease": Schema.integer(TaskRules.leaseSeconds, default: 30),
                    "max_tasks": Schema.integer(TaskRules.claimBatch, default: 1),
                ], required: ["worker_id"]),
            "ClaimedTask": Schema.record(
                taskProperties.merging(["lease_token": Schema.string, "lease_expires_at": Schema.dateTime]) { $1 }),
            "ClaimResponse": Schema.record(["tasks": Schema.array(Schema.ref("ClaimedTask"))]),
            "HeartbeatRequest": Schema.request(
                ["worker_id": workerID, "lease_token": Schema.string, "lease": Schema.integer(TaskRules.leaseSeconds)],
                required: ["worker_id", "lease_token"]),
            "HeartbeatResponse": Schema.record([
                "task_id": Schema.string, "status": taskStatus, "lease_expires_at": Schema.dateTime,
                "cancel_requested": Schema.boolean,
            ]),
            "LockRequest": Schema.request(
                [
                    "resource": Schema.string(length: LockRules.resourceLength),
                    "owner": Schema.string(length: LockRules.ownerLength),
                    "ttl": Schema.integer(LockRules.ttlRange, description: "Seconds the lock is held."),
                    "priority": Schema.integer(
                        TaskRules.priorities, default: 1, description: "Waiters with higher priority go first."),
                    "timeout": Schema.integer(LockRules.timeoutRange, default: 0, description: "Seconds to wait."),
                ], required: ["resource", "owner", "ttl"]),
            "LockGrant": Schema.record([
                "status": Schema.enumeration(["acquired"]), "resource": Schema.string, "owner": Schema.string,
                "acquired_at": Schema.dateTime, "expires_at": Schema.dateTime, "lock_id": Schema.string,
                "fencing_token": Schema.integer(),
            ]),
            "LockRelease": Schema.record([
                "status": Schema.enumeration(["released"]), "resource": Schema.string, "owner": Schema.string,
                "released_at": Schema.dateTime,
            ]),
            "LockInfo": Schema.record([
                "resource": Schema.string, "owner": Schema.string, "priority": Schema.integer(), "ttl": Schema.integer(),
                "acquired_at": Schema.dateTime, "expires_at": Schema.dateTime, "remaining_ttl": Schema.integer(),
                "lock_id": Schema.string, "fencing_token": Schema.integer(),
                "status": Schema.enumeration(["held", "expired"]),
            ]),
            "LockList": Schema.record([
                "total_locks": Schema.integer(), "locks": Schema.array(Schema.ref("LockInfo")),
                "queue_status": Schema.record([
                    "total_waiting": Schema.integer(),
                    "by_resource": ["type": "object", "additionalProperties": Schema.integer()],
                ]),
            ]),
            "WebhookRequest": Schema.object(
                [
                    "event": Schema.string(length: 1...WebhookController.maximumEventLength),
                    "timestamp": Schema.any,
                    "data": [
                        "description": "An object carrying the event's details (progress, message, result, error, duration, worker_id); anything else is read as empty."
                    ],
                    "task_id": ["description": "A string names the task a task event updates; other values are ignored."],
                    "core_id": ["description": "A string names the core; other values are ignored."],
                ], required: ["event"],
                description: "Task events (`task.started`, `task.progress`, `task.completed`, `task.failed`, "
                    + "`task.cancelled`) with a `task_id` update the task; other events are stored."),
            "WebhookReceipt": Schema.object(
                [
                    "status": Schema.enumeration(["received"]), "event_id": Schema.string,
                    "processed_at": Schema.dateTime, "webhook_id": Schema.string, "task_updated": Schema.boolean,
                    "task_update_error": Schema.string,
                ], required: ["status", "event_id", "processed_at", "webhook_id"]),
        ]
    }

    /// `coreId` (the reference's spelling) or `core_id`: exactly one of them.
    static var dispatchRequest: JSONValue {
        guard
            case .object(var schema) = Schema.request(
                [
                    "priority": Schema.integer(TaskRules.priorities, default: 1),
                    "timeout": Schema.integer(TaskRules.timeouts, default: 300, description: "Seconds a run may take."),
                    "stay": Schema.boolean,
                    "max_attempts": Schema.integer(TaskRules.maxAttemptsRange, default: 3),
                    "delay": Schema.integer(
                        TaskRules.delays, description: "Seconds before the task may run; `scheduled` until then. Not with `run_at`."),
                    "run_at": ["type": "string", "format": "date-time", "description": "When the task may run (a past time means now). Not with `delay`."],
                    "retry_policy": Schema.ref("RetryPolicy"),
                    "metadata": Schema.object(
                        [
                            "callback_url": Schema.string(
                                length: 1...2048, pattern: Callback.urlPattern,
                                description: "Receives the task's outcome. Unless its host is in ORCH_CALLBACK_ALLOWED_HOSTS, "
                                    + "a host that is a loopback, private, link-local or reserved address literal, or "
                                    + "localhost, is refused with 400, and one that resolves to such an address is refused "
                                    + "at delivery.")
                        ], required: [], description: "Free-form, at most 64 KiB as JSON."),
                ], required: [],
                description: "Give the core as `coreId` (the reference's spelling) or `core_id`, not both."),
            case .object(var properties) = schema["properties"]
        else { return [:] }
        properties["coreId"] = coreID
        properties["core_id"] = coreID
        schema["properties"] = .object(properties)
        schema["oneOf"] = [["required": ["coreId"]], ["required": ["core_id"]]]
        schema["not"] = ["required": ["delay", "run_at"]]
        return .object(schema)
    }

    static var taskProperties: [String: JSONValue] {
        [
            "task_id": Schema.string, "core_id": Schema.string, "status": taskStatus, "priority": Schema.integer(),
            "timeout": Schema.integer(), "stay": Schema.boolean, "attempts": Schema.integer(),
            "max_attempts": Schema.integer(), "created_at": Schema.dateTime, "updated_at": Schema.dateTime,
            "started_at": Schema.nullable(Schema.dateTime), "completed_at": Schema.nullable(Schema.dateTime),
            "duration": Schema.nullable(Schema.number), "progress": Schema.nullable(Schema.integer()),
            "worker_id": Schema.nullable(Schema.string), "metadata": Schema.anyObject,
            "result": Schema.nullable(Schema.any), "error": Schema.nullable(Schema.any),
            "run_at": Schema.nullable(Schema.dateTime), "retry_policy": Schema.ref("RetryPolicy"),
        ]
    }

    /// `schema` with exactly one of `names` given as a string (the others absent or null).
    static func exactlyOne(of names: [String], in schema: JSONValue) -> JSONValue {
        guard case .object(var object) = schema else { return schema }
        object["oneOf"] = .array(names.map { name in
            ["required": [.string(name)], "properties": [name: ["type": "string"]]]
        })
        return .object(object)
    }

    /// A bulk action's answer; `changed` (its wire name) is absent in a dry run.
    static func bulkResponse(_ changed: String) -> JSONValue {
        Schema.object(
            [changed: Schema.integer(), "matched": Schema.integer(), "skipped": Schema.integer(), "dry_run": Schema.boolean],
            required: ["matched", "skipped", "dry_run"])
    }

    /// ``RetryPolicy``: every field optional in a request, every field present in a task.
    static var retryPolicy: JSONValue {
        let interval = "Seconds, \(Int(TaskRules.retryIntervals.lowerBound)) to \(Int(TaskRules.retryIntervals.upperBound))."
        let bounds: [String: JSONValue] = [
            "type": "number", "minimum": .double(TaskRules.retryIntervals.lowerBound),
            "maximum": .double(TaskRules.retryIntervals.upperBound),
        ]
        func number(_ base: [String: JSONValue], _ extra: [String: JSONValue]) -> JSONValue {
            .object(base.merging(extra) { $1 })
        }
        return Schema.request(
            [
                "initial_interval": number(bounds, ["default": 1, "description": .string(interval)]),
                "backoff_coefficient": [
                    "type": "number", "default": 2, "minimum": .double(TaskRules.backoffCoefficients.lowerBound),
                    "maximum": .double(TaskRules.backoffCoefficients.upperBound),
                ],
                "maximum_interval": number(
                    bounds, ["default": 300, "description": .string(interval + " One below initial_interval counts as initial_interval.")]),
            ], required: [],
            description: "The n-th retry waits min(initial_interval * backoff_coefficient^(n-1), maximum_interval) seconds, ±10 % jitter.")
    }

    static var apiTokenProperties: [String: JSONValue] {
        [
            "token_id": Schema.string, "name": Schema.string, "role": role, "user_id": Schema.string,
            "prefix": Schema.string, "created_at": Schema.dateTime, "expires_at": Schema.nullable(Schema.dateTime),
            "last_used_at": Schema.nullable(Schema.dateTime),
        ]
    }
}
