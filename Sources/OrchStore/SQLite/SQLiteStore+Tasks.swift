import Foundation
import GRDB
import OrchCore
import OrchModels

extension SQLiteStore {
    public func insertTask(_ transition: TaskTransition, idempotency: IdempotencyKey?, activeSince: Date) async throws
        -> DispatchOutcome
    {
        try await write { db in
            if let idempotency {
                if let row = try Row.fetchOne(
                    db, sql: "SELECT fingerprint, task_id, created_at FROM idempotency_keys WHERE user_id = ? AND key = ?",
                    arguments: [idempotency.userID, idempotency.key])
                {
                    let recordedAt = Date(millis: row["created_at"])
                    if recordedAt >= idempotency.validAfter {
                        guard row["fingerprint"] as String == idempotency.fingerprint else {
                            throw OrchError.conflict(
                                "Idempotency-Key was already used with a different request",
                                details: ["idempotency_key": .string(idempotency.key), "task_id": .string(row["task_id"])])
                        }
                        if let task = try Self.fetchTask(db, id: row["task_id"]) {
                            return .repeated(task, try Self.queueStanding(of: task, activeSince: activeSince, db))
                        }
                    }
                    try db.execute(
                        sql: "DELETE FROM idempotency_keys WHERE user_id = ? AND key = ?",
                        arguments: [idempotency.userID, idempotency.key])
                }
            }
            var positions = try Self.NewTaskPositions(for: [transition.task], db)
            try Self.insertTaskRow(transition.task, db)
            let events = try Self.insertEvents(transition.events, for: transition.task, db)
            if let idempotency {
                try db.execute(
                    sql: "INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        idempotency.userID, idempotency.key, idempotency.fingerprint, transition.task.id,
                        transition.task.createdAt.millis,
                    ])
            }
            let standing = QueueStanding(
                position: try positions.next(transition.task, db),
                load: try Self.coreLoad(coreID: transition.task.coreID, since: activeSince, db))
            return .created(transition.task, events, standing)
        }
    }

    public func insertTasks(_ transitions: [TaskTransition], activeSince: Date) async throws -> [DispatchedTask] {
        try await write { db in
            // One load per core: nothing in the batch changes durations or workers.
            var loads: [String: CoreLoad] = [:]
            var positions = try Self.NewTaskPositions(for: transitions.map(\.task), db)
            return try transitions.map { transition in
                let task = transition.task
                try Self.insertTaskRow(task, db)
                let events = try Self.insertEvents(transition.events, for: task, db)
                let load = try loads[task.coreID] ?? Self.coreLoad(coreID: task.coreID, since: activeSince, db)
                loads[task.coreID] = load
                return DispatchedTask(
                    task: task, events: events, standing: QueueStanding(position: try positions.next(task, db), load: load))
            }
        }
    }

    public func task(id: String) async throws -> TaskRecord? {
        try await read { db in try Self.fetchTask(db, id: id) }
    }

    public func listTasks(_ query: TaskQuery) async throws -> (total: Int, tasks: [TaskRecord]) {
        try await read { db in
            let (whereClause, arguments) = Self.taskFilter(query)
            // The same filters over the per-core/status/priority counts (migration 008).
            let total =
                try Int.fetchOne(db, sql: "SELECT coalesce(sum(n), 0) FROM task_counts \(whereClause)", arguments: arguments)
                ?? 0
            let rows = try Row.fetchAll(db, sql: Self.taskPageSQL(query), arguments: arguments + [query.limit, query.offset])
            return (total, try rows.map(Self.taskRecord))
        }
    }

    /// The `WHERE` clause of `query`'s filters and its arguments.
    static func taskFilter(_ query: TaskQuery) -> (clause: String, arguments: StatementArguments) {
        var filter = SQLFilter()
        filter.equal("status", query.status?.rawValue)
        filter.equal("core_id", query.coreID)
        filter.equal("priority", query.priority)
        return (filter.clause, filter.arguments)
    }

    /// One page of `query`'s tasks (limit and offset as the last two arguments).
    static func taskPageSQL(_ query: TaskQuery) -> String {
        let direction = query.order == .asc ? "ASC" : "DESC"
        return """
            SELECT * FROM tasks \(taskFilter(query).clause)
            ORDER BY \(query.sort.rawValue) \(direction), seq \(direction) LIMIT ? OFFSET ?
            """
    }

    public func taskEvents(taskID: String, _ query: EventQuery) async throws -> (total: Int, events: [EventRecord]) {
        try await read { db in
            var conditions = ["task_id = ?"]
            var arguments: StatementArguments = [taskID]
            if let type = query.eventType {
                conditions.append("type = ?")
                arguments += [type]
            }
            if let since = query.since {
                conditions.append("timestamp > ?")
                arguments += [since.millis]
            }
            let whereClause = "WHERE " + conditions.joined(separator: " AND ")
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM events \(whereClause)", arguments: arguments) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM events \(whereClause) ORDER BY seq LIMIT ? OFFSET ?",
                arguments: arguments + [query.limit, query.offset])
            return (total, try rows.map(Self.eventRecord))
        }
    }

    public func modifyTask(id: String, _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition) async throws
        -> StoredTransition
    {
        try await write { db in
            guard let task = try Self.fetchTask(db, id: id) else {
                throw OrchError.taskNotFound(id)
            }
            return try Self.store(try change(task), db)
        }
    }

    public func claimTasks(
        coreID: String, workerID: String, limit: Int, now: Date,
        _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition
    ) async throws -> ClaimResult {
        try await write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO workers (worker_id, core_id, last_seen) VALUES (?, ?, ?)
                    ON CONFLICT (core_id, worker_id) DO UPDATE SET last_seen = excluded.last_seen
                    """
            ).execute(arguments: [workerID, coreID, now.millis])
            // One writer: the settings and the running count cannot move under this claim.
            var room = limit
            if let settings = try Self.coreSettings(coreID, db) {
                if settings.paused { return ClaimResult(tasks: [], blocked: .paused) }
                if let cap = settings.maxRunning {
                    let running =
                        try Int.fetchOne(
                            db.cachedStatement(
                                sql: "SELECT coalesce(sum(n), 0) FROM task_counts WHERE core_id = ? AND status = 'running'"),
                            arguments: [coreID]) ?? 0
                    room = min(limit, cap - running)
                    if room <= 0 { return ClaimResult(tasks: [], blocked: .atCapacity) }
                }
            }
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT * FROM tasks WHERE core_id = ? AND status = 'queued' AND ready_at <= ?
                        ORDER BY priority DESC, ready_at, seq LIMIT ?
                        """),
                arguments: [coreID, now.millis, room])
            return ClaimResult(tasks: try rows.map { row in try Self.store(try change(try Self.taskRecord(row)), db) })
        }
    }

    public func expireTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?)
        async throws -> [StoredTransition]
    {
        try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM tasks WHERE status = 'running' AND lease_expires_at <= ?
                    UNION
                    SELECT * FROM tasks WHERE status = 'running' AND timeout_at <= ?
                    LIMIT ?
                    """,
                arguments: [now.millis, now.millis, limit])
            return try rows.compactMap { row in
                guard let transition = change(try Self.taskRecord(row)) else { return nil }
                return try Self.store(transition, db)
            }
        }
    }

    public func nextExpiry() async throws -> Date? {
        try await read { db in
            let lease = try Int64.fetchOne(db, sql: "SELECT min(lease_expires_at) FROM tasks WHERE status = 'running'")
            let timeout = try Int64.fetchOne(db, sql: "SELECT min(timeout_at) FROM tasks WHERE status = 'running'")
            return [lease, timeout].compactMap { $0 }.min().map(Date.init(millis:))
        }
    }

    public func promoteTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?)
        async throws -> [StoredTransition]
    {
        try await write { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT * FROM tasks WHERE status = 'scheduled' AND ready_at <= ? ORDER BY ready_at LIMIT ?"),
                arguments: [now.millis, limit])
            return try rows.compactMap { row in
                guard let transition = change(try Self.taskRecord(row)) else { return nil }
                return try Self.store(transition, db)
            }
        }
    }

    public func nextPromotion() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT min(ready_at) FROM tasks WHERE status = 'scheduled'").map(Date.init(millis:))
        }
    }

    /// Tasks of higher priority come from the queued rows of `task_counts` (at most ten); of the task's own
    /// priority, those ahead are its count less the task and those behind it, found by a
    /// range scan from the task's place in the claim index (short for a new task).
    public func queuePosition(of task: TaskRecord) async throws -> Int {
        guard task.status == .queued else { return 0 }
        return try await read { db in try Self.queuePosition(of: task, db) }
    }

    /// Queue positions of new tasks inserted one after another in one transaction, each as if
    /// dispatched alone at its turn, without querying the queue per task.
    ///
    /// Read before the inserts: the queued count per priority of each core (from
    /// `task_counts`) and, for each core and priority the tasks have, how many queued tasks
    /// become ready after them (delayed retries). A new task of priority p, ready now and last
    /// in dispatch order, comes after every queued task of higher priority and every task of
    /// priority p ready by now: the counts give both, and each task then joins the counts. A
    /// task not ready at the batch's time (none today) falls back to ``queuePosition(of:_:)``.
    struct NewTaskPositions {
        private var queued: [String: [Int: Int]] = [:]
        private var readyLater: [String: [Int: Int]] = [:]
        private let readyAt: Date?

        init(for tasks: [TaskRecord], _ db: Database) throws {
            readyAt = tasks.first?.readyAt
            for core in Set(tasks.map(\.coreID)) {
                var counts: [Int: Int] = [:]
                for row in try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT priority, n FROM task_counts WHERE core_id = ? AND status = 'queued'"),
                    arguments: [core])
                {
                    counts[row[0], default: 0] += row[1] as Int
                }
                queued[core] = counts
            }
            guard let readyAt else { return }
            for key in Set(tasks.map { CorePriority(core: $0.coreID, priority: $0.priority) }) {
                readyLater[key.core, default: [:]][key.priority] =
                    try Int.fetchOne(
                        db.cachedStatement(
                            sql: """
                                SELECT count(*) FROM tasks INDEXED BY tasks_claim_order
                                WHERE core_id = ? AND status = 'queued' AND priority = ? AND ready_at > ?
                                """),
                        arguments: [key.core, key.priority, readyAt.millis]) ?? 0
            }
        }

        private struct CorePriority: Hashable {
            var core: String
            var priority: Int
        }

        /// The position of `task`, inserted just now after the tasks before it.
        mutating func next(_ task: TaskRecord, _ db: Database) throws -> Int {
            guard task.status == .queued else { return 0 }
            guard task.readyAt == readyAt, let counts = queued[task.coreID] else {
                return try SQLiteStore.queuePosition(of: task, db)
            }
            let higher = counts.reduce(0) { $0 + ($1.key > task.priority ? $1.value : 0) }
            let sameReady = counts[task.priority, default: 0] - (readyLater[task.coreID]?[task.priority] ?? 0)
            queued[task.coreID]![task.priority, default: 0] += 1
            return higher + sameReady + 1
        }
    }

    static func queueStanding(of task: TaskRecord, activeSince: Date, _ db: Database) throws -> QueueStanding {
        QueueStanding(
            position: try queuePosition(of: task, db), load: try coreLoad(coreID: task.coreID, since: activeSince, db))
    }

    static func queuePosition(of task: TaskRecord, _ db: Database) throws -> Int {
        guard task.status == .queued else { return 0 }
        do {
            guard let seq = try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM tasks WHERE id = ?"), arguments: [task.id]) else {
                return 0
            }
            let higher =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT coalesce(sum(n), 0) FROM task_counts WHERE core_id = ? AND status = 'queued' AND priority > ?"),
                    arguments: [task.coreID, task.priority]) ?? 0
            let same =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT n FROM task_counts WHERE core_id = ? AND status = 'queued' AND priority = ?"),
                    arguments: [task.coreID, task.priority]) ?? 0
            // Two range counts rather than one `OR`, which SQLite can only answer by walking
            // every queued task of the priority (dispatch then slowed down as the queue grew).
            let later =
                try Int.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT count(*) FROM tasks INDEXED BY tasks_claim_order
                            WHERE core_id = ? AND status = 'queued' AND priority = ? AND ready_at > ?
                            """),
                    arguments: [task.coreID, task.priority, task.readyAt.millis]) ?? 0
            let sameTimeAfter =
                try Int.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT count(*) FROM tasks INDEXED BY tasks_claim_order
                            WHERE core_id = ? AND status = 'queued' AND priority = ? AND ready_at = ? AND seq > ?
                            """),
                    arguments: [task.coreID, task.priority, task.readyAt.millis, seq]) ?? 0
            let behind = later + sameTimeAfter
            return higher + max(0, same - 1 - behind) + 1
        }
    }

    public func coreLoad(coreID: String, since: Date) async throws -> CoreLoad {
        try await read { db in try Self.coreLoad(coreID: coreID, since: since, db) }
    }

    static func coreLoad(coreID: String, since: Date, _ db: Database) throws -> CoreLoad {
        do {
            let average = try Double.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT avg(duration) FROM (
                            SELECT duration FROM tasks
                            WHERE core_id = ? AND status = 'completed'
                            ORDER BY created_at DESC LIMIT 100)
                        """),
                arguments: [coreID])
            let workers =
                try Int.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT count(*) FROM (
                                SELECT worker_id FROM workers WHERE core_id = ? AND last_seen >= ?
                                UNION
                                SELECT worker_id FROM tasks WHERE core_id = ? AND status = 'running' AND worker_id IS NOT NULL)
                            """),
                    arguments: [coreID, since.millis, coreID]) ?? 0
            return CoreLoad(averageDuration: average, activeWorkers: workers)
        }
    }

    public func countTasks(status: TaskStatus) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT coalesce(sum(n), 0) FROM task_counts WHERE status = ?", arguments: [status.rawValue])
                ?? 0
        }
    }

    public func countTasks(matching filter: TaskFilter) async throws -> Int {
        try await read { db in
            let (clause, arguments) = Self.sqlFilter(filter)
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM tasks WHERE \(clause)", arguments: arguments) ?? 0
        }
    }

    public func finishedTasks(status: TaskStatus, since: Date, until: Date, limit: Int) async throws -> [FinishedTask] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT core_id, updated_at, duration FROM tasks
                    WHERE status = ? AND updated_at >= ? AND updated_at < ? ORDER BY updated_at DESC LIMIT ?
                    """,
                arguments: [status.rawValue, since.millis, until.millis, limit]
            ).map { row in
                FinishedTask(
                    coreID: row["core_id"], status: status, finishedAt: Date(millis: row["updated_at"]), duration: row["duration"])
            }
        }
    }

    public func modifyTasks(
        matching filter: TaskFilter, after cursor: Int64?, limit: Int,
        _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?
    ) async throws -> BulkBatch {
        try await write { db in
            let (clause, arguments) = Self.sqlFilter(filter)
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM tasks WHERE seq > ? AND \(clause) ORDER BY seq LIMIT ?",
                arguments: [cursor ?? 0] + arguments + [limit])
            let changed = try rows.compactMap { row -> StoredTransition? in
                guard let transition = change(try Self.taskRecord(row)) else { return nil }
                return try Self.store(transition, db)
            }
            return BulkBatch(changed: changed, matched: rows.count, cursor: rows.last.map { $0["seq"] as Int64 })
        }
    }

    /// The conditions of a bulk action's filter (`1` for none) and their arguments.
    static func sqlFilter(_ filter: TaskFilter) -> (String, StatementArguments) {
        var conditions: [String] = ["1"]
        var arguments = StatementArguments()
        if let core = filter.coreID {
            conditions.append("core_id = ?")
            arguments += [core]
        }
        if !filter.statuses.isEmpty {
            conditions.append("status IN (\(Array(repeating: "?", count: filter.statuses.count).joined(separator: ", ")))")
            arguments += StatementArguments(filter.statuses.map(\.rawValue))
        }
        if let priority = filter.priority {
            conditions.append("priority = ?")
            arguments += [priority]
        }
        if let before = filter.createdBefore {
            conditions.append("created_at < ?")
            arguments += [before.millis]
        }
        if let after = filter.createdAfter {
            conditions.append("created_at > ?")
            arguments += [after.millis]
        }
        if let ids = filter.taskIDs {
            conditions.append(ids.isEmpty ? "0" : "id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))")
            arguments += StatementArguments(ids)
        }
        return (conditions.joined(separator: " AND "), arguments)
    }

    public func queueSummary() async throws -> [CoreQueueSummary] {
        try await read { db in
            var summaries: [String: CoreQueueSummary] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT core_id, sum(depth) AS depth, min(oldest) AS oldest FROM (
                        SELECT c.core_id, c.priority, sum(c.n) AS depth,
                            (SELECT t.ready_at FROM tasks t
                             WHERE t.status = 'queued' AND t.core_id = c.core_id AND t.priority = c.priority
                             ORDER BY t.ready_at LIMIT 1) AS oldest
                        FROM task_counts c WHERE c.status = 'queued'
                        GROUP BY c.core_id, c.priority HAVING sum(c.n) > 0)
                    GROUP BY core_id
                    """)
            {
                summaries[row["core_id"]] = CoreQueueSummary(
                    coreID: row["core_id"], depth: row["depth"], oldestReadyAt: (row["oldest"] as Int64?).map(Date.init(millis:)))
            }
            for row in try Row.fetchAll(
                db,
                sql: "SELECT core_id, sum(n) AS n FROM task_counts WHERE status = 'scheduled' GROUP BY core_id HAVING sum(n) > 0")
            {
                let core: String = row["core_id"]
                summaries[core, default: CoreQueueSummary(coreID: core, depth: 0, oldestReadyAt: nil)].scheduled = row["n"]
            }
            return summaries.values.sorted { $0.coreID < $1.coreID }
        }
    }

    // MARK: Rows

    static func fetchTask(_ db: Database, id: String) throws -> TaskRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM tasks WHERE id = ?"), arguments: [id]).map(taskRecord)
    }

    /// Writes a transition's task and events; returns them as stored.
    static func store(_ transition: TaskTransition, _ db: Database) throws -> StoredTransition {
        try updateTaskRow(transition.task, db)
        let events = try insertEvents(transition.events, for: transition.task, db)
        try queueCallbacks(for: transition.task, events: events, db)
        return (transition.task, events)
    }

    static let taskColumns = [
        "id", "core_id", "status", "priority", "timeout", "stay", "attempts", "max_attempts", "created_at",
        "updated_at", "started_at", "completed_at", "duration", "progress", "worker_id", "metadata", "result", "error",
        "ready_at", "lease_token", "lease_expires_at", "lease_seconds", "timeout_at", "cancel_requested",
        "consecutive_failures", "created_by", "retry_initial", "retry_coefficient", "retry_maximum",
    ]

    static func taskValues(_ task: TaskRecord) throws -> [(any DatabaseValueConvertible)?] {
        let values: [(any DatabaseValueConvertible)?] = [
            task.id, task.coreID, task.status.rawValue, task.priority, task.timeout, task.stay, task.attempts,
            task.maxAttempts, task.createdAt.millis, task.updatedAt.millis, task.startedAt?.millis,
            task.completedAt?.millis, task.duration, task.progress, task.workerID, try JSONColumn.encode(task.metadata),
            try task.result.map(JSONColumn.encodeValue), try task.error.map(JSONColumn.encodeValue), task.readyAt.millis,
            task.leaseToken, task.leaseExpiresAt?.millis, task.leaseSeconds,
            task.status == .running ? task.timeoutAt?.millis : nil, task.cancelRequested, task.consecutiveFailures,
            task.createdBy, task.retryPolicy.initialInterval, task.retryPolicy.backoffCoefficient,
            task.retryPolicy.maximumInterval,
        ]
        return values
    }

    /// The row statements every task change runs, written once; each connection keeps them
    /// prepared (GRDB's statement cache), so they are parsed once per connection.
    static let insertTaskSQL =
        "INSERT INTO tasks (\(taskColumns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: taskColumns.count).joined(separator: ", ")))"
    static let updateTaskSQL =
        "UPDATE tasks SET \(taskColumns.dropFirst().map { "\($0) = ?" }.joined(separator: ", ")) WHERE id = ?"
    static let insertEventSQL = "INSERT INTO events (task_id, core_id, type, timestamp, data) VALUES (?, ?, ?, ?, ?)"

    static func insertTaskRow(_ task: TaskRecord, _ db: Database) throws {
        try db.cachedStatement(sql: insertTaskSQL).execute(arguments: StatementArguments(try taskValues(task)))
    }

    static func updateTaskRow(_ task: TaskRecord, _ db: Database) throws {
        // The id (first value) moves to the end, for the WHERE clause.
        let values = try taskValues(task)
        try db.cachedStatement(sql: updateTaskSQL).execute(
            arguments: StatementArguments(Array(values.dropFirst()) + [values[0]]))
    }

    static func insertEvents(_ drafts: [EventDraft], for task: TaskRecord, _ db: Database) throws -> [EventRecord] {
        try insertEvents(drafts, taskID: task.id, coreID: task.coreID, db)
    }

    static func insertEvents(_ drafts: [EventDraft], taskID: String?, coreID: String?, _ db: Database) throws
        -> [EventRecord]
    {
        try drafts.map { draft in
            try db.cachedStatement(sql: insertEventSQL).execute(
                arguments: [taskID, coreID, draft.type.rawValue, draft.timestamp.millis, try JSONColumn.encode(draft.data)])
            return EventRecord(
                sequence: db.lastInsertedRowID, taskID: taskID, coreID: coreID, type: draft.type,
                timestamp: draft.timestamp, data: draft.data)
        }
    }

    static func taskRecord(_ row: Row) throws -> TaskRecord {
        TaskRecord(
            id: row["id"], coreID: row["core_id"], status: TaskStatus(rawValue: row["status"]) ?? .failed,
            priority: row["priority"], timeout: row["timeout"], stay: row["stay"], attempts: row["attempts"],
            maxAttempts: row["max_attempts"], createdAt: Date(millis: row["created_at"]),
            updatedAt: Date(millis: row["updated_at"]), startedAt: (row["started_at"] as Int64?).map(Date.init(millis:)),
            completedAt: (row["completed_at"] as Int64?).map(Date.init(millis:)), duration: row["duration"],
            progress: row["progress"], workerID: row["worker_id"], metadata: try JSONColumn.decode(row["metadata"]),
            result: try (row["result"] as String?).map(JSONColumn.decodeValue),
            error: try (row["error"] as String?).map(JSONColumn.decodeValue), readyAt: Date(millis: row["ready_at"]),
            leaseToken: row["lease_token"], leaseExpiresAt: (row["lease_expires_at"] as Int64?).map(Date.init(millis:)),
            leaseSeconds: row["lease_seconds"], cancelRequested: row["cancel_requested"],
            consecutiveFailures: row["consecutive_failures"], createdBy: row["created_by"],
            retryPolicy: RetryPolicy(
                initialInterval: row["retry_initial"], backoffCoefficient: row["retry_coefficient"],
                maximumInterval: row["retry_maximum"]))
    }

    static func eventRecord(_ row: Row) throws -> EventRecord {
        let name: String = row["type"]
        guard let type = EventType(rawValue: name) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "event with an unknown type \(name)")
        }
        return EventRecord(
            sequence: row["seq"], taskID: row["task_id"], coreID: row["core_id"], type: type,
            timestamp: Date(millis: row["timestamp"]), data: try JSONColumn.decode(row["data"]))
    }
}

extension SQLiteStore {
    public func appendEvents(_ drafts: [EventDraft], taskID: String?, coreID: String?) async throws -> [EventRecord] {
        try await write { db in try Self.insertEvents(drafts, taskID: taskID, coreID: coreID, db) }
    }

    public func events(after: Int64, through: Int64, matching filter: EventFilter, limit: Int) async throws
        -> [EventRecord]
    {
        try await read { db in
            var conditions = ["seq > ?", "seq <= ?"]
            var arguments: StatementArguments = [after, through]
            if let taskID = filter.taskID {
                conditions.append("task_id = ?")
                arguments += [taskID]
            }
            if let coreID = filter.coreID {
                conditions.append("core_id = ?")
                arguments += [coreID]
            }
            if filter.constrainsType {
                var alternatives: [String] = []
                if !filter.types.isEmpty {
                    alternatives.append("type IN (\(Array(repeating: "?", count: filter.types.count).joined(separator: ", ")))")
                    for type in filter.types.sorted() { arguments += [type] }
                }
                for prefix in filter.typePrefixes {
                    alternatives.append("substr(type, 1, ?) = ?")
                    arguments += [prefix.count, prefix]
                }
                conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
            }
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM events WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?",
                arguments: arguments + [limit])
            return try rows.map(Self.eventRecord)
        }
    }

    public func lastEventSequence() async throws -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events") ?? 0 }
    }

    /// One writer commits transactions in sequence order: nothing is ever in flight below a
    /// published sequence.
    public func eventFence() async throws -> EventFence { EventFence(0) }

    public func hasSettled(_ fence: EventFence) async throws -> Bool { true }
}
