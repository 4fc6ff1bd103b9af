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
        guard idempotency == nil else { return try await insertOne(transition, idempotency: idempotency, activeSince: activeSince) }
        return try await dispatches.run(CombinedDispatch(transition: transition, activeSince: activeSince)) { batch in
            try await self.insertCombined(batch)
        }
    }

    /// How many combined dispatch batches are written at once, out of a pool of `poolSize`
    /// connections, and the most dispatches one batch takes. Measured here (2 cores, 64
    /// connections of load): a single dispatch costs PostgreSQL about 1 ms of CPU (twelve index
    /// entries, the counting trigger, an event row, the standing reads, a commit), a dispatch
    /// written in a batch of 16 a quarter of that; fewer, larger batches beat many small ones.
    /// Task changes are combined the same way.
    static func combiner<Input, Output>(poolSize: Int) -> Combiner<Input, Output> {
        Combiner(concurrency: max(1, min(4, poolSize / 4)), maximumBatch: 128)
    }

    /// A dispatch waiting to be combined with others.
    struct CombinedDispatch: Sendable {
        var transition: TaskTransition
        var activeSince: Date
    }

    /// Writes combined dispatches: one alone as a single statement, several as one batch (each
    /// answered as if dispatched one after another, in arrival order). A batch that fails for
    /// anything but an unreachable database is written again one dispatch at a time, so that
    /// one bad dispatch fails alone.
    func insertCombined(_ batch: [CombinedDispatch]) async throws -> [Result<DispatchOutcome, any Error>] {
        if batch.count > 1 {
            do {
                return try await insertTasks(batch.map(\.transition), activeSince: batch[0].activeSince).map { dispatched in
                    .success(.created(dispatched.task, dispatched.events, dispatched.standing))
                }
            } catch let error as OrchError where error.status == 503 {
                throw error
            } catch {
                // Written one at a time below.
            }
        }
        var results: [Result<DispatchOutcome, any Error>] = []
        for dispatch in batch {
            do {
                results.append(.success(try await insertOne(dispatch.transition, idempotency: nil, activeSince: dispatch.activeSince)))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    /// One dispatch as one statement.
    func insertOne(_ transition: TaskTransition, idempotency: IdempotencyKey?, activeSince: Date) async throws
        -> DispatchOutcome
    {
        statistics.inserted(1)
        let task = transition.task
        var binds = PostgresBindings(capacity: 32)
        Self.bindTask(task, into: &binds)
        let events = Self.pendingEvents([transition])
        Self.bindEvents(events, into: &binds)
        binds.append(activeSince.sqlTime)
        if let idempotency {
            binds.append(idempotency.userID)
            binds.append(idempotency.key)
            binds.append(idempotency.fingerprint)
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

    /// The dispatch statement: the task's parameters (``bindTask(_:into:)``), then its events'
    /// (``bindEvents(_:into:)``), then active since; with `keyed`, the idempotency key after
    /// that (user, key, fingerprint, valid after). An expired key is taken over; a live one is
    /// left alone, and then nothing is inserted.
    static func dispatchSQL(keyed: Bool) -> String {
        let after = firstParameterAfterEvents
        let (activeSince, user, key, fingerprint, validAfter) = ("$\(after)", "$\(after + 1)", "$\(after + 2)", "$\(after + 3)", "$\(after + 4)")
        let (id, core, priority, createdAt, readyAt) = (
            taskParameter("id"), taskParameter("core_id"), taskParameter("priority"), taskParameter("created_at"),
            taskParameter("ready_at")
        )
        let claim = """
            claimed AS (
                INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at)
                VALUES (\(user), \(key), \(fingerprint), \(id), \(createdAt))
                ON CONFLICT (user_id, key) DO UPDATE
                    SET fingerprint = excluded.fingerprint, task_id = excluded.task_id, created_at = excluded.created_at
                    WHERE idempotency_keys.created_at < \(validAfter)
                RETURNING 1),
            """
        return """
            WITH \(keyed ? claim : "")
            inserted AS (\(insertTaskSQL(onlyIf: keyed ? "EXISTS (SELECT 1 FROM claimed)" : nil)) RETURNING seq),
            stored_events AS (\(insertEventsSQL(from: firstEventParameter, onlyIf: "inserted")))
            SELECT
                (SELECT count(*) FROM inserted) AS created,
                (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences,
                \(positionColumns(core, priority, readyAt)),
                \(loadColumns(core, activeSince))
            """
    }

    /// The parameter types of ``dispatchSQL(keyed:)``.
    static func dispatchParameterTypes(keyed: Bool) -> [PostgresDataType] {
        taskParameterTypes + eventParameterTypes + [.timestamptz] + (keyed ? [.text, .text, .text, .timestamptz] : [])
    }

    /// The parameter (`$n`) of the task field `name` in the single-task statements.
    static func taskParameter(_ name: String) -> String {
        guard let index = taskFields.firstIndex(where: { $0.name == name }) else { preconditionFailure("no task field \(name)") }
        return "$\(index + 1)"
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

    /// Inserts the whole batch, and reads each task's standing as if the tasks had been
    /// dispatched one after another, in one statement (``insertBatchSQL``): the counts it reads
    /// are those before the insert, to which each task adds the batch's own tasks ahead of it.
    public func insertTasks(_ transitions: [TaskTransition], activeSince: Date) async throws -> [DispatchedTask] {
        guard !transitions.isEmpty else { return [] }
        statistics.inserted(transitions.count)
        let tasks = transitions.map(\.task)
        let pending = Self.pendingEvents(transitions)
        var binds = Self.bindings(Self.taskRows(tasks))
        Self.bindEvents(pending, into: &binds)
        let cores = Array(Set(tasks.map(\.coreID))).sorted()
        binds.append(cores)
        let queued = tasks.filter { $0.status == .queued }
        binds.append(queued.map(\.coreID))
        binds.append(queued.map { Int64($0.priority) })
        binds.append(queued.map(\.readyAt.millis))
        binds.append(activeSince.sqlTime)
        let statement = binds
        let needsCallbacks = transitions.contains { transition in
            Callback.url(in: transition.task.metadata) != nil && transition.events.contains { Callback.triggers[$0.type] != nil }
        }
        let write: @Sendable (PostgresTransaction) async throws -> [DispatchedTask] = { transaction in
            guard let row = try await transaction.rows(InsertBatch.self, statement).first else {
                throw StoredDataError("a batch insert returned no row")
            }
            let events = Self.records(pending, sequences: try row.decode("sequences", as: [Int64].self))
            var standings = try BatchStandings(row, cores: cores)
            var results: [DispatchedTask] = []
            for (task, events) in try await Self.storedTransitions(transitions, events: events, transaction) {
                results.append(DispatchedTask(task: task, events: events, standing: standings.next(task)))
            }
            return results
        }
        return try await needsCallbacks ? transaction(write) : autocommit(write)
    }

    /// `$1` the tasks' rows, `$2`-`$6` their events (``bindEvents(_:into:)``), `$7` the
    /// batch's cores, `$8`-`$10` each queued task's core, priority and ready time (ms), `$11`
    /// active since: the tasks and events inserted, with the queued counts of the batch's cores
    /// before (`count_cores`, `count_priorities`, `counts`), for each queued task the queued
    /// tasks of its priority ready after it (`later`), and for each core its load (`averages`,
    /// -1 for none, and `workers`).
    static let insertBatchSQL = """
        WITH inserted AS (\(insertTasksSQL) RETURNING 1),
        stored_events AS (\(insertEventsSQL(from: 2, onlyIf: "inserted"))),
        counts AS (
            SELECT core_id, priority, sum(n)::bigint AS n FROM task_counts
            WHERE core_id = ANY($7::text[]) AND status = 'queued' GROUP BY core_id, priority)
        SELECT
            (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences,
            (SELECT coalesce(array_agg(core_id ORDER BY core_id, priority), '{}') FROM counts) AS count_cores,
            (SELECT coalesce(array_agg(priority ORDER BY core_id, priority), '{}') FROM counts) AS count_priorities,
            (SELECT coalesce(array_agg(n ORDER BY core_id, priority), '{}') FROM counts) AS counts,
            (SELECT coalesce(array_agg(\(readyLater("k.core_id", "k.priority", "orch_ms(k.ready)")) ORDER BY k.ord), '{}')
                FROM unnest($8::text[], $9::bigint[], $10::bigint[]) WITH ORDINALITY AS k(core_id, priority, ready, ord)) AS later,
            (SELECT coalesce(array_agg(coalesce(\(averageDuration("c.core_id")), -1) ORDER BY c.ord), '{}')
                FROM unnest($7::text[]) WITH ORDINALITY AS c(core_id, ord)) AS averages,
            (SELECT coalesce(array_agg(\(activeWorkers("c.core_id", since: "$11")) ORDER BY c.ord), '{}')
                FROM unnest($7::text[]) WITH ORDINALITY AS c(core_id, ord)) AS workers
        """

    /// The standings of a batch's tasks, from the counts ``insertBatchSQL`` read before it.
    struct BatchStandings {
        private var queued: [String: [Int: Int]] = [:]
        private var later: ArraySlice<Int64>
        private var loads: [String: CoreLoad] = [:]

        init(_ row: PostgresRandomAccessRow, cores: [String]) throws {
            let countCores = try row.decode("count_cores", as: [String].self)
            let priorities = try row.decode("count_priorities", as: [Int64].self)
            let counts = try row.decode("counts", as: [Int64].self)
            for (core, (priority, n)) in zip(countCores, zip(priorities, counts)) {
                queued[core, default: [:]][Int(priority), default: 0] += Int(n)
            }
            later = try row.decode("later", as: [Int64].self)[...]
            let averages = try row.decode("averages", as: [Double].self)
            let workers = try row.decode("workers", as: [Int64].self)
            for (core, (average, count)) in zip(cores, zip(averages, workers)) {
                loads[core] = CoreLoad(averageDuration: average < 0 ? nil : average, activeWorkers: Int(count))
            }
        }

        /// The standing of `task`, the next of the batch.
        mutating func next(_ task: TaskRecord) -> QueueStanding {
            let load = loads[task.coreID] ?? CoreLoad(averageDuration: nil, activeWorkers: 0)
            guard task.status == .queued else { return QueueStanding(position: 0, load: load) }
            let readyLater = Int(later.popFirst() ?? 0)
            let counts = queued[task.coreID, default: [:]]
            let higher = counts.reduce(0) { $0 + ($1.key > task.priority ? $1.value : 0) }
            queued[task.coreID, default: [:]][task.priority, default: 0] += 1
            return QueueStanding(position: higher + max(0, counts[task.priority, default: 0] - readyLater) + 1, load: load)
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

    /// Changes of tasks arriving while others are written are combined (``changes``): a batch
    /// is read in one statement and written in one (``updateChangedTasksSQL``), each change
    /// applied only if its task is still the row version it was read at. A change whose task
    /// changed in between, a second change of one task in the batch, and a change that queues a
    /// callback are then written alone (``modifyOne(id:_:)``). Alone, a change is what it was
    /// before combining: the same optimistic read and conditional write.
    public func modifyTask(id: String, _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition) async throws
        -> StoredTransition
    {
        try await changes.run(CombinedChange(id: id, change: change)) { batch in try await self.modifyCombined(batch) }
    }

    /// A task change waiting to be combined with others.
    struct CombinedChange: Sendable {
        var id: String
        var change: @Sendable (TaskRecord) throws -> TaskTransition
    }

    /// Writes combined changes (see ``modifyTask(id:_:)``); each answered in order. A batch
    /// whose statements fail for anything but an unreachable database is written again one
    /// change at a time, so that one bad change fails alone.
    func modifyCombined(_ batch: [CombinedChange]) async throws -> [Result<StoredTransition, any Error>] {
        var results = [Result<StoredTransition, any Error>?](repeating: nil, count: batch.count)
        var alone: [Int] = []
        if batch.count == 1 {
            alone = [0]
        } else {
            do {
                alone = try await writeChanges(batch, into: &results)
            } catch let error as OrchError where error.status == 503 {
                throw error
            } catch {
                alone = results.indices.filter { results[$0] == nil }
            }
        }
        for index in alone {
            do {
                results[index] = .success(try await modifyOne(id: batch[index].id, batch[index].change))
            } catch {
                results[index] = .failure(error)
            }
        }
        return results.map { $0 ?? .failure(StoredDataError("a combined task change was not answered")) }
    }

    /// Reads `batch`'s tasks and writes the changes it can in one statement each, filling in
    /// `results`; returns the changes to be written alone, in order.
    private func writeChanges(_ batch: [CombinedChange], into results: inout [Result<StoredTransition, any Error>?])
        async throws -> [Int]
    {
        let ids = Array(Set(batch.map(\.id)))
        var read: [String: (task: TaskRecord, version: String)] = [:]
        var binds = PostgresBindings(capacity: 1)
        binds.append(ids)
        for row in try await rows(TasksWithVersions.self, binds) {
            let task = try Self.taskRecord(row)
            read[task.id] = (task, try row.decode("version", as: String.self))
        }
        var alone: [Int] = []
        var seen: Set<String> = []
        var written: [(index: Int, transition: TaskTransition, version: String)] = []
        for (index, item) in batch.enumerated() {
            guard seen.insert(item.id).inserted else {
                alone.append(index)
                continue
            }
            guard let (task, version) = read[item.id] else {
                results[index] = .failure(OrchError.taskNotFound(item.id))
                continue
            }
            do {
                let transition = try item.change(task)
                if Callback.url(in: transition.task.metadata) != nil {
                    alone.append(index)
                } else {
                    written.append((index, transition, version))
                }
            } catch {
                results[index] = .failure(error)
            }
        }
        guard !written.isEmpty else { return alone }
        let pending = Self.pendingEvents(written.map(\.transition))
        var statement = Self.bindings(Self.taskRows(written.map(\.transition.task), versions: written.map(\.version)))
        Self.bindEvents(pending, into: &statement)
        statement.append(written.map(\.transition.task.id))
        guard let row = try await rows(UpdateChangedTasks.self, statement).first else {
            throw StoredDataError("a combined task change returned no row")
        }
        let updated = Set(try row.decode("updated", as: [String].self))
        var remaining = Self.records(
            pending.filter { $0.taskID.map(updated.contains) ?? false },
            sequences: try row.decode("sequences", as: [Int64].self))[...]
        for item in written {
            guard updated.contains(item.transition.task.id) else {
                alone.append(item.index)
                continue
            }
            let own = Array(remaining.prefix(item.transition.events.count))
            remaining = remaining.dropFirst(item.transition.events.count)
            results[item.index] = .success((item.transition.task, own))
        }
        return alone.sorted()
    }

    /// `$1` the changed tasks' rows, each with the row version it was read at (`version`),
    /// `$2`-`$6` their events (``bindEvents(_:into:)``), `$7` the tasks' ids: each task whose
    /// row is still that version replaced, and the events of those inserted; returns the ids of
    /// the replaced tasks and the events' sequences.
    static let updateChangedTasksSQL = """
        WITH updated AS (\(updateTasksSQL(ids: "$7", onlyIfVersion: true)) RETURNING tasks.id),
        stored_events AS (\(insertEventsSQL(from: 2, onlyForTasksIn: "updated")))
        SELECT (SELECT coalesce(array_agg(id), '{}') FROM updated) AS updated,
            (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences
        """

    /// One change written alone. Optimistic: the task is read with its row version (`xmin`),
    /// and the change is written in one statement only if the row is still that version (two
    /// round trips, no explicit transaction); a concurrent change makes it read and apply
    /// again. A change that queues a callback takes the row lock instead, so the callback
    /// commits with it.
    func modifyOne(id: String, _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition) async throws
        -> StoredTransition
    {
        for _ in 0..<8 {
            guard let row = try await rows(TaskWithVersion.self, Self.bindings(id)).first else {
                throw OrchError.taskNotFound(id)
            }
            let transition = try change(try Self.taskRecord(row))
            if Callback.url(in: transition.task.metadata) != nil { break }
            let pending = Self.pendingEvents([transition])
            var binds = PostgresBindings(capacity: 32)
            Self.bindTask(transition.task, into: &binds)
            Self.bindEvents(pending, into: &binds)
            binds.append(try row.decode("version", as: String.self))
            let stored = try await rows(UpdateTaskIfUnchanged.self, binds).first
            guard let stored, try stored.decode("updated", as: Int64.self) == 1 else { continue }
            return (transition.task, Self.records(pending, sequences: try stored.decode("sequences", as: [Int64].self)))
        }
        return try await transaction { transaction in
            guard let task = try await Self.fetchTask(id, transaction, forUpdate: true) else {
                throw OrchError.taskNotFound(id)
            }
            return try await Self.store([try change(task)], transaction)[0]
        }
    }

    /// One task (``bindTask(_:into:)``), its events (``bindEvents(_:into:)``), then the row
    /// version it was read at: the task replaced and its events inserted only if the row is
    /// still that version.
    static let updateTaskIfUnchangedSQL = """
        WITH updated AS (\(updateTaskSQL) AND xmin = $\(firstParameterAfterEvents)::xid RETURNING 1),
        stored_events AS (\(insertEventsSQL(from: firstEventParameter, onlyIf: "updated")))
        SELECT (SELECT count(*) FROM updated) AS updated,
            (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM stored_events) AS sequences
        """

    /// The parameter types of ``updateTaskIfUnchangedSQL``.
    static let updateTaskIfUnchangedParameterTypes = taskParameterTypes + eventParameterTypes + [.text]

    public func claimTasks(
        coreID: String, workerID: String, limit: Int, now: Date,
        _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition
    ) async throws -> ClaimResult {
        try await transaction { transaction in
            // The worker is recorded and the tasks are taken in one statement, unless the core
            // is paused or capped.
            var binds = Self.bindings(workerID, coreID)
            binds.append(now.sqlTime)
            binds.append(Int64(limit))
            let tasks = try await transaction.rows(Claim.self, binds).map(Self.taskRecord)
            if !tasks.isEmpty { return ClaimResult(tasks: try await Self.store(try tasks.map(change), transaction)) }
            guard let settings = try await Self.coreSettings(coreID, transaction),
                settings.paused || settings.maxRunning != nil
            else { return ClaimResult(tasks: []) }
            if settings.paused { return ClaimResult(tasks: [], blocked: .paused) }
            // Capped: claims of the core take its row lock in turn, and each counts the running
            // tasks in a statement begun after the previous claim committed.
            guard let locked = try await Self.coreSettings(coreID, transaction, forUpdate: true) else {
                return ClaimResult(tasks: [])
            }
            if locked.paused { return ClaimResult(tasks: [], blocked: .paused) }
            guard let cap = locked.maxRunning else { return ClaimResult(tasks: []) }
            let running = try await transaction.rows(
                """
                SELECT coalesce(sum(n), 0)::bigint AS running FROM task_counts
                WHERE core_id = \(coreID) AND status = 'running'
                """
            ).first?.int("running") ?? 0
            let room = min(limit, cap - running)
            guard room > 0 else { return ClaimResult(tasks: [], blocked: .atCapacity) }
            let capped = try await transaction.rows(
                """
                SELECT \(unescaped: Self.taskColumns) FROM tasks
                WHERE core_id = \(coreID) AND status = 'queued' AND ready_at <= \(now.sqlTime)
                ORDER BY priority DESC, ready_at, seq LIMIT \(Int64(room))
                FOR UPDATE OF tasks SKIP LOCKED
                """
            ).map(Self.taskRecord)
            return ClaimResult(tasks: try await Self.store(try capped.map(change), transaction))
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

    public func promoteTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?)
        async throws -> [StoredTransition]
    {
        try await transaction { transaction in
            let tasks = try await transaction.rows(
                """
                SELECT \(unescaped: Self.taskColumns) FROM tasks
                WHERE status = 'scheduled' AND ready_at <= \(now.sqlTime)
                ORDER BY ready_at LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
                """
            ).map(Self.taskRecord)
            return try await Self.store(tasks.compactMap(change), transaction)
        }
    }

    public func nextPromotion() async throws -> Date? {
        try await row("SELECT min(ready_at) AS next FROM tasks WHERE status = 'scheduled'")?.optionalDate("next")
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

    public func finishedTasks(status: TaskStatus, since: Date, until: Date, limit: Int) async throws -> [FinishedTask] {
        try await rows(
            """
            SELECT core_id, updated_at, duration FROM tasks
            WHERE status = \(status.rawValue) AND updated_at >= \(since.sqlTime) AND updated_at < \(until.sqlTime)
            ORDER BY updated_at DESC LIMIT \(limit)
            """
        ).map { row in
            FinishedTask(
                coreID: try row.decode("core_id"), status: status, finishedAt: try row.date("updated_at"),
                duration: try row.decode("duration"))
        }
    }

    public func countTasks(matching filter: TaskFilter) async throws -> Int {
        let conditions = Self.postgresFilter(filter)
        return try await rows(conditions.query("SELECT count(*)::bigint AS n FROM tasks", suffix: "")).first?.int("n") ?? 0
    }

    public func modifyTasks(
        matching filter: TaskFilter, after cursor: Int64?, limit: Int,
        _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?
    ) async throws -> BulkBatch {
        var conditions = Self.postgresFilter(filter)
        conditions.condition("seq > $?", [cursor ?? 0])
        let query = conditions.query(
            "SELECT \(Self.taskColumns) FROM tasks", suffix: " ORDER BY seq LIMIT \(limit) FOR UPDATE")
        return try await transaction { transaction in
            let rows = try await transaction.rows(query)
            let tasks = try rows.map(Self.taskRecord)
            let changed = try await Self.store(tasks.compactMap(change), transaction)
            return BulkBatch(changed: changed, matched: rows.count, cursor: try rows.last?.decode("seq", as: Int64.self))
        }
    }

    /// A bulk action's filter as a `WHERE` clause.
    static func postgresFilter(_ filter: TaskFilter) -> PostgresFilter {
        var conditions = PostgresFilter()
        conditions.equal("core_id", filter.coreID)
        if !filter.statuses.isEmpty { conditions.condition("status = ANY($?)", [filter.statuses.map(\.rawValue)]) }
        conditions.equal("priority", filter.priority.map(Int64.init))
        if let before = filter.createdBefore { conditions.condition("created_at < $?", [before.sqlTime]) }
        if let after = filter.createdAfter { conditions.condition("created_at > $?", [after.sqlTime]) }
        if let ids = filter.taskIDs { conditions.condition("id = ANY($?)", [ids]) }
        return conditions
    }

    public func queueSummary() async throws -> [CoreQueueSummary] {
        try await transaction { transaction in
            var summaries: [String: CoreQueueSummary] = [:]
            for row in try await transaction.rows(
                """
                SELECT core_id, sum(depth)::bigint AS depth, min(oldest) AS oldest FROM (
                    SELECT c.core_id, c.priority, sum(c.n) AS depth,
                        (SELECT t.ready_at FROM tasks t
                         WHERE t.status = 'queued' AND t.core_id = c.core_id AND t.priority = c.priority
                         ORDER BY t.ready_at LIMIT 1) AS oldest
                    FROM task_counts c WHERE c.status = 'queued'
                    GROUP BY c.core_id, c.priority HAVING sum(c.n) > 0) AS queued
                GROUP BY core_id
                """
            ) {
                let core: String = try row.decode("core_id")
                summaries[core] = CoreQueueSummary(
                    coreID: core, depth: try row.int("depth"), oldestReadyAt: try row.optionalDate("oldest"))
            }
            for row in try await transaction.rows(
                """
                SELECT core_id, sum(n)::bigint AS n FROM task_counts WHERE status = 'scheduled'
                GROUP BY core_id HAVING sum(n) > 0
                """
            ) {
                let core: String = try row.decode("core_id")
                summaries[core, default: CoreQueueSummary(coreID: core, depth: 0, oldestReadyAt: nil)].scheduled = try row.int("n")
            }
            return summaries.values.sorted { $0.coreID < $1.coreID }
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
        \(readyLater(core, priority, readyAt)) AS later
        """
    }

    /// The queued tasks of core `core` and priority `priority` that become ready after
    /// `readyAt`. Nearly always none: the latest ready time of the core's queued tasks of that
    /// priority is read first, straight from the end of the claim-order index, and only when it
    /// is later are they counted. (Counted directly, `ready_at > $n` in a prepared statement's
    /// generic plan is estimated at a third of the queue, and PostgreSQL chose to read the whole
    /// table for it on every dispatch.) When they are counted, it is from the end of that index
    /// backwards (`ORDER BY ready_at DESC LIMIT`), which the generic plan also reads as a range:
    /// with several nodes, a task ready a moment later often commits first through another node,
    /// and the plain count then read the core's whole queue (1.7 million index rows fetched for
    /// 2,000 dispatches across three nodes). Past ``laterCountLimit`` the count stops: the
    /// position is an estimate then, a few tasks either way in a queue that long.
    static let laterCountLimit = 10_000

    static func readyLater(_ core: String, _ priority: String, _ readyAt: String) -> String {
        """
        (CASE WHEN (SELECT ready_at FROM tasks WHERE core_id = \(core) AND status = 'queued' AND priority = \(priority)
                ORDER BY ready_at DESC LIMIT 1) > \(readyAt)
            THEN (SELECT count(*) FROM (SELECT 1 FROM tasks
                WHERE core_id = \(core) AND status = 'queued' AND priority = \(priority) AND ready_at > \(readyAt)
                ORDER BY ready_at DESC LIMIT \(laterCountLimit)) later)
            ELSE 0 END)
        """
    }

    /// Columns `average` and `workers` of the core `core` (``averageDuration(_:)``,
    /// ``activeWorkers(_:since:)``).
    static func loadColumns(_ core: String, _ since: String) -> String {
        "\(averageDuration(core)) AS average, \(activeWorkers(core, since: since)) AS workers"
    }

    /// The core's mean duration over its 100 most recently created completed tasks (`avg`
    /// passes over a task without one).
    ///
    /// Written so that the generic plan can only read `tasks_core_created` backwards, whatever
    /// the statistics say. With `core_id = $n AND status = 'completed' ORDER BY created_at`,
    /// PostgreSQL knows both columns are constant and reads the order from any index ending in
    /// `created_at`: when one core held every task in the statistics (a million finished tasks
    /// of one core, a dispatch to another), it walked `tasks_created` or `tasks_status` backwards
    /// through all of them (100-300 ms per dispatch); with `duration IS NOT NULL` and no
    /// durations in the statistics it read the whole table. As ranges that hold one value, the
    /// columns are ordered by, and only `(core_id, status, created_at)` gives that order.
    static func averageDuration(_ core: String) -> String {
        """
        (SELECT avg(duration) FROM (
            SELECT duration FROM tasks
            WHERE core_id >= \(core) AND core_id <= \(core) AND status >= 'completed' AND status <= 'completed'
            ORDER BY core_id DESC, status DESC, created_at DESC LIMIT 100) recent)
        """
    }

    /// The core's workers seen since `since` or running one of its tasks.
    static func activeWorkers(_ core: String, since: String) -> String {
        """
        (SELECT count(*) FROM (
            SELECT worker_id FROM workers WHERE core_id = \(core) AND last_seen >= \(since)
            UNION
            SELECT worker_id FROM tasks WHERE core_id = \(core) AND status = 'running' AND worker_id IS NOT NULL) active)
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
