import Foundation
import OrchCore
import OrchModels
import PostgresNIO

extension PostgresStore {
    /// A dispatch is one statement (so one round trip and one commit): the idempotency key is
    /// claimed first (`INSERT ... ON CONFLICT`), the task and its events are inserted only when
    /// the claim succeeded, and the new task's standing is read from the same snapshot (which
    /// does not yet see the task: the counts below are of the tasks ahead of it). A key claimed
    /// by a concurrent dispatch makes this one wait for that one's commit and then answer its
    /// task.
    public func insertTask(_ transition: TaskTransition, idempotency: IdempotencyKey?, activeSince: Date) async throws
        -> DispatchOutcome
    {
        let task = transition.task
        var binds = Self.bindings(Self.taskRows([task]))
        let events = transition.events.map { PendingEvent(draft: $0, taskID: task.id, coreID: task.coreID) }
        binds.append(Self.eventRows(events))
        binds.append(task.coreID)
        binds.append(Int64(task.priority))
        binds.append(task.readyAt.sqlTime)
        binds.append(activeSince.sqlTime)
        if let idempotency {
            binds.append(idempotency.userID)
            binds.append(idempotency.key)
            binds.append(idempotency.fingerprint)
            binds.append(task.id)
            binds.append(task.createdAt.sqlTime)
            binds.append(idempotency.validAfter.sqlTime)
        }
        // One statement commits by itself: one round trip, no BEGIN or COMMIT.
        let row = try await (idempotency == nil ? rows(Dispatch.self, binds) : rows(KeyedDispatch.self, binds)).first
        guard let row else { throw StoredDataError("a dispatch returned no row") }
        if try row.decode("created", as: Int64.self) > 0 {
            let stored = Self.records(events, sequences: try row.decode("sequences", as: [Int64].self))
            let position = task.status == .queued ? try Self.newTaskPosition(row) : 0
            return .created(task, stored, QueueStanding(position: position, load: try Self.coreLoad(row)))
        }
        // The key belongs to an earlier (or concurrent, now committed) dispatch.
        guard let idempotency else { throw StoredDataError("a dispatch without a key inserted nothing") }
        return try await repeatedDispatch(idempotency, activeSince: activeSince)
    }

    /// The dispatch statement: `$1` the task's row, `$2` its events, `$3` core, `$4` priority,
    /// `$5` ready at, `$6` active since; with `keyed`, `$7`-`$12` the idempotency key (user, key,
    /// fingerprint, task id, created at, valid after). An expired key is taken over; a live one
    /// is left alone, and then nothing is inserted.
    static func dispatchSQL(keyed: Bool) -> String {
        let claim = """
            claimed AS (
                INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at)
                VALUES ($7, $8, $9, $10, $11)
                ON CONFLICT (user_id, key) DO UPDATE
                    SET fingerprint = excluded.fingerprint, task_id = excluded.task_id, created_at = excluded.created_at
                    WHERE idempotency_keys.created_at < $12
                RETURNING 1),
            """
        return """
            WITH \(keyed ? claim : "")
            inserted AS (\(insertTasksSQL) \(keyed ? "WHERE EXISTS (SELECT 1 FROM claimed)" : "") RETURNING seq),
            stored_events AS (\(insertEventsSQL(rows: "$2", onlyIf: "inserted")))
            SELECT
                (SELECT count(*) FROM inserted) AS created,
                (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences,
                \(positionColumns("$3", "$4", "$5")),
                \(loadColumns("$3", "$6"))
            """
    }

    /// The task an earlier dispatch with `idempotency`'s key created, or 409 when that dispatch
    /// was a different request.
    private func repeatedDispatch(_ idempotency: IdempotencyKey, activeSince: Date) async throws -> DispatchOutcome {
        try await transaction { transaction in
            guard
                let key = try await transaction.row(
                    """
                    SELECT fingerprint, task_id FROM idempotency_keys
                    WHERE user_id = \(idempotency.userID) AND key = \(idempotency.key)
                    """)
            else { throw OrchError.conflict("Idempotency-Key was claimed concurrently; try again") }
            let taskID: String = try key.decode("task_id")
            guard try key.decode("fingerprint", as: String.self) == idempotency.fingerprint else {
                throw OrchError.conflict(
                    "Idempotency-Key was already used with a different request",
                    details: ["idempotency_key": .string(idempotency.key), "task_id": .string(taskID)])
            }
            guard let task = try await Self.fetchTask(taskID, transaction) else {
                throw OrchError.conflict(
                    "The task of this Idempotency-Key no longer exists",
                    details: ["idempotency_key": .string(idempotency.key), "task_id": .string(taskID)])
            }
            return .repeated(task, try await Self.queueStanding(of: task, activeSince: activeSince, transaction))
        }
    }

    /// Inserts the whole batch in one statement, then reads each task's standing as if the
    /// tasks had been dispatched one after another: the counts read before the insert, plus the
    /// batch's own tasks ahead of each.
    public func insertTasks(_ transitions: [TaskTransition], activeSince: Date) async throws -> [DispatchedTask] {
        guard !transitions.isEmpty else { return [] }
        return try await transaction { transaction in
            var positions = try await NewTaskPositions(for: transitions.map(\.task), transaction)
            try await transaction.execute(
                PostgresQuery(unsafeSQL: Self.insertTasksSQL, binds: Self.bindings(Self.taskRows(transitions.map(\.task)))))
            let stored = try await Self.storeEvents(of: transitions, transaction)
            var loads: [String: CoreLoad] = [:]
            var results: [DispatchedTask] = []
            for (task, events) in stored {
                let load: CoreLoad
                if let known = loads[task.coreID] {
                    load = known
                } else {
                    load = try await Self.coreLoad(coreID: task.coreID, since: activeSince, transaction)
                    loads[task.coreID] = load
                }
                let position = try await positions.next(task, transaction)
                results.append(DispatchedTask(task: task, events: events, standing: QueueStanding(position: position, load: load)))
            }
            return results
        }
    }

    public func task(id: String) async throws -> TaskRecord? {
        try await row("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id)").map(Self.taskRecord)
    }

    public func listTasks(_ query: TaskQuery) async throws -> (total: Int, tasks: [TaskRecord]) {
        var filter = PostgresFilter()
        filter.equal("status", query.status?.rawValue)
        filter.equal("core_id", query.coreID)
        filter.equal("priority", query.priority.map(Int64.init))
        let direction = query.order == .asc ? "ASC" : "DESC"
        var page = filter.query(
            "SELECT \(Self.taskColumns) FROM tasks", suffix: " ORDER BY \(query.sort.rawValue) \(direction), seq \(direction)")
        page.limit(query.limit, offset: query.offset)
        let total = filter.query("SELECT coalesce(sum(n), 0)::bigint AS n FROM task_counts", suffix: "")
        let tasks = page
        return try await transaction { transaction in
            let count = try await transaction.row(total)?.decode("n", as: Int64.self) ?? 0
            return (Int(count), try await transaction.rows(tasks).map(Self.taskRecord))
        }
    }

    public func taskEvents(taskID: String, _ query: EventQuery) async throws -> (total: Int, events: [EventRecord]) {
        var filter = PostgresFilter()
        filter.equal("task_id", taskID)
        filter.equal("type", query.eventType)
        if let since = query.since { filter.condition("timestamp > $?", [since.sqlTime]) }
        var page = filter.query("SELECT \(Self.eventColumns) FROM events", suffix: " ORDER BY seq")
        page.limit(query.limit, offset: query.offset)
        let total = filter.query("SELECT count(*) AS n FROM events", suffix: "")
        let events = page
        return try await transaction { transaction in
            let count = try await transaction.row(total)?.decode("n", as: Int64.self) ?? 0
            return (Int(count), try await transaction.rows(events).map(Self.eventRecord))
        }
    }

    /// Optimistic: the task is read with its row version (`xmin`), and the change is written in
    /// one statement only if the row is still that version (two round trips, no explicit
    /// transaction); a concurrent change makes it read and apply again. A change that queues a
    /// callback takes the row lock instead, so the callback commits with it.
    public func modifyTask(id: String, _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition) async throws
        -> StoredTransition
    {
        for _ in 0..<8 {
            guard let row = try await rows(TaskWithVersion.self, Self.bindings(id)).first else {
                throw OrchError.notFound("Task \(id) not found", details: ["task_id": .string(id)])
            }
            let transition = try change(try Self.taskRecord(row))
            if Callback.url(in: transition.task.metadata) != nil { break }
            let pending = transition.events.map {
                PendingEvent(draft: $0, taskID: transition.task.id, coreID: transition.task.coreID)
            }
            var binds = Self.bindings(Self.taskRows([transition.task]), Self.eventRows(pending))
            binds.append(try row.decode("version", as: String.self))
            let stored = try await rows(UpdateTaskIfUnchanged.self, binds).first
            guard let stored, try stored.decode("updated", as: Int64.self) == 1 else { continue }
            return (transition.task, Self.records(pending, sequences: try stored.decode("sequences", as: [Int64].self)))
        }
        return try await transaction { transaction in
            guard let task = try await Self.fetchTask(id, transaction, forUpdate: true) else {
                throw OrchError.notFound("Task \(id) not found", details: ["task_id": .string(id)])
            }
            return try await Self.store([try change(task)], transaction)[0]
        }
    }

    /// `$1` one task's row, `$2` its events, `$3` the row version it was read at: the task
    /// replaced and its events inserted only if the row is still that version.
    static let updateTaskIfUnchangedSQL = """
        WITH updated AS (\(updateTasksSQL) AND tasks.xmin = $3::xid RETURNING 1),
        stored_events AS (\(insertEventsSQL(rows: "$2", onlyIf: "updated")))
        SELECT (SELECT count(*) FROM updated) AS updated,
            (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences
        """

    public func claimTasks(
        coreID: String, workerID: String, limit: Int, now: Date,
        _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition
    ) async throws -> [StoredTransition] {
        try await transaction { transaction in
            // The worker is recorded and the tasks are taken in one statement.
            var binds = Self.bindings(workerID, coreID)
            binds.append(now.sqlTime)
            binds.append(Int64(limit))
            let tasks = try await transaction.rows(Claim.self, binds).map(Self.taskRecord)
            return try await Self.store(try tasks.map(change), transaction)
        }
    }

    public func expireTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?)
        async throws -> [StoredTransition]
    {
        try await transaction { transaction in
            let tasks = try await transaction.rows(
                """
                SELECT \(unescaped: Self.taskColumns) FROM tasks
                WHERE status = 'running' AND (lease_expires_at <= \(now.sqlTime) OR timeout_at <= \(now.sqlTime))
                LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
                """
            ).map(Self.taskRecord)
            return try await Self.store(tasks.compactMap(change), transaction)
        }
    }

    public func nextExpiry() async throws -> Date? {
        try await row(
            """
            SELECT least(
                (SELECT min(lease_expires_at) FROM tasks WHERE status = 'running'),
                (SELECT min(timeout_at) FROM tasks WHERE status = 'running')) AS next
            """
        )?.optionalDate("next")
    }

    public func nextReadyTime(coreID: String, after now: Date) async throws -> Date? {
        try await row(
            """
            SELECT min(ready_at) AS next FROM tasks
            WHERE core_id = \(coreID) AND status = 'queued' AND ready_at > \(now.sqlTime)
            """
        )?.optionalDate("next")
    }

    public func queuePosition(of task: TaskRecord) async throws -> Int {
        guard task.status == .queued else { return 0 }
        return try await transaction { transaction in try await Self.queuePosition(of: task, transaction) }
    }

    public func coreLoad(coreID: String, since: Date) async throws -> CoreLoad {
        try await transaction { transaction in try await Self.coreLoad(coreID: coreID, since: since, transaction) }
    }

    public func countTasks(status: TaskStatus) async throws -> Int {
        try await row("SELECT coalesce(sum(n), 0)::bigint AS n FROM task_counts WHERE status = \(status.rawValue)")?
            .int("n") ?? 0
    }

    public func queueSummary() async throws -> [CoreQueueSummary] {
        try await rows(
            """
            SELECT core_id, count(*) AS depth, min(greatest(created_at, ready_at)) AS oldest
            FROM tasks WHERE status = 'queued' GROUP BY core_id ORDER BY core_id
            """
        ).map { row in
            CoreQueueSummary(coreID: try row.decode("core_id"), depth: try row.int("depth"), oldestReadyAt: try row.optionalDate("oldest"))
        }
    }

    // MARK: Standing

    /// Columns `higher`, `same` and `later`: queued tasks of the core (`core`) of higher priority
    /// than `priority`, of the same priority, and of the same priority that become ready after
    /// `readyAt`. A new task comes after `higher + same - later` of them.
    static func positionColumns(_ core: String, _ priority: String, _ readyAt: String) -> String {
        """
        (SELECT coalesce(sum(n), 0)::bigint FROM task_counts
            WHERE core_id = \(core) AND status = 'queued' AND priority > \(priority)) AS higher,
        (SELECT coalesce(sum(n), 0)::bigint FROM task_counts
            WHERE core_id = \(core) AND status = 'queued' AND priority = \(priority)) AS same,
        (SELECT count(*) FROM tasks
            WHERE core_id = \(core) AND status = 'queued' AND priority = \(priority) AND ready_at > \(readyAt)) AS later
        """
    }

    /// Columns `average` and `workers`: the core's mean duration over its 100 most recently
    /// created completed tasks, and the workers seen since `since` or running one of its tasks.
    static func loadColumns(_ core: String, _ since: String) -> String {
        """
        (SELECT avg(duration) FROM (
            SELECT duration FROM tasks
            WHERE core_id = \(core) AND status = 'completed' AND duration IS NOT NULL
            ORDER BY created_at DESC LIMIT 100) recent) AS average,
        (SELECT count(*) FROM (
            SELECT worker_id FROM workers WHERE core_id = \(core) AND last_seen >= \(since)
            UNION
            SELECT worker_id FROM tasks WHERE core_id = \(core) AND status = 'running' AND worker_id IS NOT NULL) active)
            AS workers
        """
    }

    static func newTaskPosition(_ row: PostgresRandomAccessRow) throws -> Int {
        try row.int("higher") + max(0, try row.int("same") - row.int("later")) + 1
    }

    static func coreLoad(_ row: PostgresRandomAccessRow) throws -> CoreLoad {
        CoreLoad(averageDuration: try row.decode("average"), activeWorkers: try row.int("workers"))
    }

    static func coreLoad(coreID: String, since: Date, _ transaction: PostgresTransaction) async throws -> CoreLoad {
        var binds = bindings(coreID)
        binds.append(since.sqlTime)
        let row = try await transaction.row(PostgresQuery(unsafeSQL: "SELECT \(loadColumns("$1", "$2"))", binds: binds))
        guard let row else { return CoreLoad(averageDuration: nil, activeWorkers: 0) }
        return try coreLoad(row)
    }

    static func queueStanding(of task: TaskRecord, activeSince: Date, _ transaction: PostgresTransaction) async throws
        -> QueueStanding
    {
        QueueStanding(
            position: try await queuePosition(of: task, transaction),
            load: try await coreLoad(coreID: task.coreID, since: activeSince, transaction))
    }

    /// The place of a stored queued task: those of higher priority, and those of its priority
    /// ready before it (or at the same time and dispatched earlier).
    static func queuePosition(of task: TaskRecord, _ transaction: PostgresTransaction) async throws -> Int {
        guard task.status == .queued else { return 0 }
        let row = try await transaction.row(
            """
            SELECT
                (SELECT coalesce(sum(n), 0)::bigint FROM task_counts
                    WHERE core_id = \(task.coreID) AND status = 'queued' AND priority > \(Int64(task.priority))) AS higher,
                (SELECT count(*) FROM tasks t, tasks me
                    WHERE me.id = \(task.id) AND me.status = 'queued' AND t.core_id = me.core_id AND t.status = 'queued'
                    AND t.priority = me.priority AND (t.ready_at < me.ready_at OR (t.ready_at = me.ready_at AND t.seq < me.seq)))
                    AS ahead,
                EXISTS (SELECT 1 FROM tasks WHERE id = \(task.id) AND status = 'queued') AS queued
            """)
        guard let row, try row.decode("queued", as: Bool.self) else { return 0 }
        return try row.int("higher") + row.int("ahead") + 1
    }

    /// Queue positions of new tasks inserted one after another in one transaction, each as if
    /// dispatched alone at its turn (see the SQLite store's type of the same name): the counts
    /// are read once before the inserts, and each task then joins them.
    struct NewTaskPositions {
        private var queued: [String: [Int: Int]] = [:]
        private var readyLater: [String: [Int: Int]] = [:]
        private let readyAt: Date?

        init(for tasks: [TaskRecord], _ transaction: PostgresTransaction) async throws {
            readyAt = tasks.first?.readyAt
            for core in Set(tasks.map(\.coreID)) {
                var counts: [Int: Int] = [:]
                for row in try await transaction.rows(
                    """
                    SELECT priority, sum(n)::bigint AS n FROM task_counts
                    WHERE core_id = \(core) AND status = 'queued' GROUP BY priority
                    """)
                {
                    counts[try row.int("priority"), default: 0] += try row.int("n")
                }
                queued[core] = counts
            }
            guard let readyAt else { return }
            for task in tasks where readyLater[task.coreID]?[task.priority] == nil {
                let row = try await transaction.row(
                    """
                    SELECT count(*) AS n FROM tasks
                    WHERE core_id = \(task.coreID) AND status = 'queued' AND priority = \(Int64(task.priority))
                    AND ready_at > \(readyAt.sqlTime)
                    """)
                readyLater[task.coreID, default: [:]][task.priority] = try row?.int("n") ?? 0
            }
        }

        /// The position of `task`, inserted just now after the tasks before it.
        mutating func next(_ task: TaskRecord, _ transaction: PostgresTransaction) async throws -> Int {
            guard task.status == .queued else { return 0 }
            guard task.readyAt == readyAt, let counts = queued[task.coreID] else {
                return try await PostgresStore.queuePosition(of: task, transaction)
            }
            let higher = counts.reduce(0) { $0 + ($1.key > task.priority ? $1.value : 0) }
            let sameReady = counts[task.priority, default: 0] - (readyLater[task.coreID]?[task.priority] ?? 0)
            queued[task.coreID]![task.priority, default: 0] += 1
            return higher + sameReady + 1
        }
    }

    // MARK: Rows

    static func fetchTask(_ id: String, _ transaction: PostgresTransaction, forUpdate: Bool = false) async throws
        -> TaskRecord?
    {
        try await transaction.row(
            "SELECT \(unescaped: taskColumns) FROM tasks WHERE id = \(id) \(unescaped: forUpdate ? "FOR UPDATE" : "")"
        ).map(taskRecord)
    }
}

extension PostgresStore {
    public func appendEvents(_ drafts: [EventDraft], taskID: String?, coreID: String?) async throws -> [EventRecord] {
        try await transaction { transaction in try await Self.insertEvents(drafts, taskID: taskID, coreID: coreID, transaction) }
    }

    public func events(after: Int64, through: Int64, matching filter: EventFilter, limit: Int) async throws
        -> [EventRecord]
    {
        var conditions = PostgresFilter()
        conditions.condition("seq > $?", [after])
        conditions.condition("seq <= $?", [through])
        conditions.equal("task_id", filter.taskID)
        conditions.equal("core_id", filter.coreID)
        if filter.constrainsType {
            var alternatives: [String] = []
            var values: [any PostgresDynamicTypeEncodable] = []
            if !filter.types.isEmpty {
                alternatives.append("type = ANY($?)")
                values.append(filter.types.sorted())
            }
            for prefix in filter.typePrefixes {
                alternatives.append("left(type, $?) = $?")
                values.append(Int64(prefix.count))
                values.append(prefix)
            }
            conditions.condition("(" + alternatives.joined(separator: " OR ") + ")", values)
        }
        var query = conditions.query("SELECT \(Self.eventColumns) FROM events", suffix: " ORDER BY seq")
        query.binds.append(Int64(limit))
        query.sql += " LIMIT $\(query.binds.count)"
        return try await rows(query).map(Self.eventRecord)
    }

    public func lastEventSequence() async throws -> Int64 {
        try await row("SELECT coalesce(max(seq), 0) AS seq FROM events")?.decode("seq") ?? 0
    }

    /// The first transaction id not yet started: every transaction that holds an unstored
    /// sequence allocated before now has an id below it (an event's insert gives its
    /// transaction an id as it takes the sequence).
    public func eventFence() async throws -> EventFence {
        EventFence(try await row("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS fence")?.decode("fence") ?? 0)
    }

    /// Settled when the oldest transaction still running is no older than the fence.
    public func hasSettled(_ fence: EventFence) async throws -> Bool {
        let xmin: Int64 = try await row("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin")?.decode("xmin") ?? 0
        return xmin >= fence.value
    }
}
