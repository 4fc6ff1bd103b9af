import Foundation
import OrchCore
import OrchModels
import NIOCore
import PostgresNIO

/// How tasks and events travel to PostgreSQL. One task travels as typed parameters of a plain
/// `VALUES` row or `SET` list (the hot paths: a dispatch, a status change); several travel as
/// one `jsonb` array unpacked by `jsonb_to_recordset`, so a batch of 1,000 tasks is still one
/// round trip and one plan. Both are made from the one column table ``taskFields``. (Measured
/// here: `jsonb_to_recordset` adds about 95 µs of server time to every statement, five times
/// the cost of inserting the row itself, which only a batch amortises.) In the recordset, times
/// travel as milliseconds (`orch_ms`), JSON columns as their text (a JSON `null` result stays
/// JSON). Events, any number of them, travel as five binary arrays unpacked by `unnest`.
extension PostgresStore {
    /// One column of `tasks`: its name, how its value travels, and the value of a task.
    struct Field: Sendable {
        enum Kind {
            case text, bigint, boolean, double, millis, json

            /// The type of the field in the recordset.
            var recordType: String {
                switch self {
                case .text, .json: "text"
                case .bigint, .millis: "bigint"
                case .boolean: "boolean"
                case .double: "double precision"
                }
            }

            /// The type the field is bound as when it travels as a parameter.
            var parameterType: PostgresDataType {
                switch self {
                case .text, .json: .text
                case .bigint: .int8
                case .boolean: .bool
                case .double: .float8
                case .millis: .timestamptz
                }
            }
        }

        /// A task's value of a field.
        enum Value {
            case text(String?), int(Int?), bool(Bool), double(Double?), time(Date?)

            /// Appends the value as JSON (a time as milliseconds) to `text`.
            func write(to text: inout String) {
                switch self {
                case .text(let value): value.map { JSONValue.writeString($0, to: &text) } ?? (text += "null")
                case .int(let value): text += value.map { String($0) } ?? "null"
                case .bool(let value): text += value ? "true" : "false"
                case .double(let value): (value.map(JSONValue.double) ?? .null).write(to: &text)
                case .time(let value): text += value.map { String($0.millis) } ?? "null"
                }
            }

            func bind(into bindings: inout PostgresBindings) {
                switch self {
                case .text(let value): bindings.append(value)
                case .int(let value): bindings.append(value.map(Int64.init))
                case .bool(let value): bindings.append(value)
                case .double(let value): bindings.append(value)
                case .time(let value): bindings.append(value?.sqlTime)
                }
            }
        }

        var name: String
        var kind: Kind
        var value: @Sendable (TaskRecord) -> Value

        init(_ name: String, _ kind: Kind, _ value: @escaping @Sendable (TaskRecord) -> Value) {
            self.name = name
            self.kind = kind
            self.value = value
        }

        /// The column value made from the recordset's `x.name`.
        var expression: String {
            switch kind {
            case .millis: "orch_ms(x.\(name))"
            case .json: "x.\(name)::jsonb"
            default: "x.\(name)"
            }
        }

        /// The column value made from parameter `$number`.
        func parameter(_ number: Int) -> String {
            kind == .json ? "$\(number)::jsonb" : "$\(number)"
        }
    }

    static let taskFields: [Field] = [
        Field("id", .text) { .text($0.id) }, Field("core_id", .text) { .text($0.coreID) },
        Field("status", .text) { .text($0.status.rawValue) }, Field("priority", .bigint) { .int($0.priority) },
        Field("timeout", .bigint) { .int($0.timeout) }, Field("stay", .boolean) { .bool($0.stay) },
        Field("attempts", .bigint) { .int($0.attempts) }, Field("max_attempts", .bigint) { .int($0.maxAttempts) },
        Field("created_at", .millis) { .time($0.createdAt) }, Field("updated_at", .millis) { .time($0.updatedAt) },
        Field("started_at", .millis) { .time($0.startedAt) }, Field("completed_at", .millis) { .time($0.completedAt) },
        Field("duration", .double) { .double($0.duration) }, Field("progress", .bigint) { .int($0.progress) },
        Field("worker_id", .text) { .text($0.workerID) },
        Field("metadata", .json) { .text(JSONValue.jsonText($0.metadata)) },
        Field("result", .json) { .text($0.result?.jsonText) }, Field("error", .json) { .text($0.error?.jsonText) },
        Field("ready_at", .millis) { .time($0.readyAt) }, Field("lease_token", .text) { .text($0.leaseToken) },
        Field("lease_expires_at", .millis) { .time($0.leaseExpiresAt) },
        Field("lease_seconds", .bigint) { .int($0.leaseSeconds) },
        Field("timeout_at", .millis) { .time($0.status == .running ? $0.timeoutAt : nil) },
        Field("cancel_requested", .boolean) { .bool($0.cancelRequested) },
        Field("consecutive_failures", .bigint) { .int($0.consecutiveFailures) },
        Field("created_by", .text) { .text($0.createdBy) },
        Field("retry_initial", .double) { .double($0.retryPolicy.initialInterval) },
        Field("retry_coefficient", .double) { .double($0.retryPolicy.backoffCoefficient) },
        Field("retry_maximum", .double) { .double($0.retryPolicy.maximumInterval) },
    ]

    /// In the single-task statements: the first of the event parameters, after the task's.
    static let firstEventParameter = taskFields.count + 1
    /// In the single-task statements: the first parameter after the task's and its events'.
    static let firstParameterAfterEvents = taskFields.count + eventParameterTypes.count + 1

    static let taskColumnNames = taskFields.map(\.name).joined(separator: ", ")

    /// The recordset's column list, `id text, core_id text, ...`.
    static let taskRecordColumns = taskFields.map { "\($0.name) \($0.kind.recordType)" }.joined(separator: ", ")

    /// `$1` holds the tasks' rows; inserted in their order.
    static let insertTasksSQL = """
        INSERT INTO tasks (\(taskColumnNames))
        SELECT \(taskFields.map(\.expression).joined(separator: ", "))
        FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (\(taskRecordColumns)))
            WITH ORDINALITY AS x(\(taskColumnNames), ord)
        """

    /// One task inserted from the task parameters (`$1` on) (``bindTask(_:into:)``), only when
    /// `condition` holds.
    static func insertTaskSQL(onlyIf condition: String? = nil) -> String {
        """
        INSERT INTO tasks (\(taskColumnNames))
        SELECT \(taskFields.indices.map { taskFields[$0].parameter($0 + 1) }.joined(separator: ", "))
        \(condition.map { "WHERE \($0)" } ?? "")
        """
    }

    /// `$1` holds the tasks' rows and `ids` (a parameter) their ids; each row replaces the
    /// stored task with its id. (The ids again as an array let the generic plan find the tasks
    /// by their index whatever the table's size: joined on the recordset alone, a plan made
    /// while the table was small read all of it for every claim.)
    /// With `onlyIfVersion`, each row also has a `version` and replaces its task only if the
    /// stored row is still that version (`xmin`).
    static func updateTasksSQL(ids: String, onlyIfVersion: Bool = false) -> String {
        """
        UPDATE tasks SET \(taskFields.dropFirst().map { "\($0.name) = \($0.expression)" }.joined(separator: ", "))
        FROM jsonb_to_recordset($1::jsonb) AS x(\(taskRecordColumns)\(onlyIfVersion ? ", version text" : ""))
        WHERE tasks.id = ANY(\(ids)::text[]) AND tasks.id = x.id\(onlyIfVersion ? " AND tasks.xmin = x.version::xid" : "")
        """
    }

    /// The task with id `$1` replaced by the task parameters (`$1` on) (``bindTask(_:into:)``).
    static let updateTaskSQL = """
        UPDATE tasks SET \(taskFields.indices.dropFirst().map { "\(taskFields[$0].name) = \(taskFields[$0].parameter($0 + 1))" }
            .joined(separator: ", "))
        WHERE id = $1
        """

    /// The parameter types of ``insertTaskSQL(onlyIf:)`` and ``updateTaskSQL``.
    static let taskParameterTypes = taskFields.map(\.kind.parameterType)

    /// Appends `task`'s columns, in ``taskFields`` order, as parameters.
    static func bindTask(_ task: TaskRecord, into bindings: inout PostgresBindings) {
        for field in taskFields { field.value(task).bind(into: &bindings) }
    }

    /// The events of the five array parameters from `$1` (``bindEvents(_:into:)``) inserted in
    /// their order, returning their sequences.
    static let insertEventsSQL = insertEventsSQL(from: 1)

    /// The events of the five array parameters from `$first` (``bindEvents(_:into:)``)
    /// inserted in their order, returning their sequences; with `onlyIf`, only when the CTE of
    /// that name returned a row; with `onlyForTasksIn`, only the events of the tasks whose ids
    /// the CTE of that name returned.
    static func insertEventsSQL(from first: Int, onlyIf: String? = nil, onlyForTasksIn: String? = nil) -> String {
        let arrays = ["text", "text", "text", "bigint", "text"].enumerated().map { "$\(first + $0.offset)::\($0.element)[]" }
        let condition = onlyIf.map { "WHERE EXISTS (SELECT 1 FROM \($0))" }
            ?? onlyForTasksIn.map { "WHERE x.task_id IN (SELECT id FROM \($0))" } ?? ""
        return """
            INSERT INTO events (task_id, core_id, type, timestamp, data)
            SELECT nullif(x.task_id, ''), nullif(x.core_id, ''), x.type, orch_ms(x.ts), x.data::jsonb
            FROM unnest(\(arrays.joined(separator: ", "))) WITH ORDINALITY AS x(task_id, core_id, type, ts, data, ord)
            \(condition)
            ORDER BY x.ord
            RETURNING seq
            """
    }

    /// The parameter types of ``bindEvents(_:into:)``.
    static let eventParameterTypes: [PostgresDataType] = [.textArray, .textArray, .textArray, .int8Array, .textArray]

    /// The columns every task read selects, JSON as text.
    static let taskColumns = """
        seq, id, core_id, status, priority, timeout, stay, attempts, max_attempts, created_at, updated_at, started_at,
        completed_at, duration, progress, worker_id, metadata::text AS metadata, result::text AS result,
        error::text AS error, ready_at, lease_token, lease_expires_at, lease_seconds, cancel_requested,
        consecutive_failures, created_by, retry_initial, retry_coefficient, retry_maximum
        """

    static let eventColumns = "seq, task_id, core_id, type, timestamp, data::text AS data"

    /// The JSON array of `tasks`' rows, written field by field (no dictionary per row); with
    /// `versions`, each row also has its task's row version as `version`.
    static func taskRows(_ tasks: [TaskRecord], versions: [String]? = nil) -> String {
        var text = "["
        text.reserveCapacity(tasks.count * 640)
        for (index, task) in tasks.enumerated() {
            text += index == 0 ? "{" : ",{"
            for (number, field) in taskFields.enumerated() {
                text += number == 0 ? "\"" : ",\""
                text += field.name
                text += "\":"
                field.value(task).write(to: &text)
            }
            if let versions {
                text += ",\"version\":"
                JSONValue.writeString(versions[index], to: &text)
            }
            text += "}"
        }
        return text + "]"
    }

    /// An event waiting for its sequence, with the task and core it belongs to.
    struct PendingEvent {
        var draft: EventDraft
        var taskID: String?
        var coreID: String?
    }

    /// The events of `transitions`, in order, each with its task and core.
    static func pendingEvents(_ transitions: [TaskTransition]) -> [PendingEvent] {
        transitions.flatMap { transition in
            transition.events.map { PendingEvent(draft: $0, taskID: transition.task.id, coreID: transition.task.coreID) }
        }
    }

    /// Appends `events` as five array parameters (columns of the events, in order): task ids
    /// and core ids (`''` for none; neither is ever empty), types, times in milliseconds, data.
    /// Arrays in PostgreSQL's binary format: `unnest` of them costs a fraction of unpacking a
    /// `jsonb` recordset.
    static func bindEvents(_ events: [PendingEvent], into bindings: inout PostgresBindings) {
        bindings.append(events.map { $0.taskID ?? "" })
        bindings.append(events.map { $0.coreID ?? "" })
        bindings.append(events.map(\.draft.type.rawValue))
        bindings.append(events.map(\.draft.timestamp.millis))
        bindings.append(events.map { JSONValue.jsonText($0.draft.data) })
    }

    static func taskRecord(_ row: PostgresRandomAccessRow) throws -> TaskRecord {
        TaskRecord(
            id: try row.decode("id"), coreID: try row.decode("core_id"),
            status: TaskStatus(rawValue: try row.decode("status")) ?? .failed, priority: try row.int("priority"),
            timeout: try row.int("timeout"), stay: try row.decode("stay"), attempts: try row.int("attempts"),
            maxAttempts: try row.int("max_attempts"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"), startedAt: try row.optionalDate("started_at"),
            completedAt: try row.optionalDate("completed_at"), duration: try row.decode("duration"),
            progress: try row.optionalInt("progress"), workerID: try row.decode("worker_id"),
            metadata: try JSONColumn.decode(try row.decode("metadata")),
            result: try row.decode("result", as: String?.self).map(JSONColumn.decodeValue),
            error: try row.decode("error", as: String?.self).map(JSONColumn.decodeValue),
            readyAt: try row.date("ready_at"), leaseToken: try row.decode("lease_token"),
            leaseExpiresAt: try row.optionalDate("lease_expires_at"), leaseSeconds: try row.optionalInt("lease_seconds"),
            cancelRequested: try row.decode("cancel_requested"),
            consecutiveFailures: try row.int("consecutive_failures"), createdBy: try row.decode("created_by"),
            retryPolicy: RetryPolicy(
                initialInterval: try row.decode("retry_initial"), backoffCoefficient: try row.decode("retry_coefficient"),
                maximumInterval: try row.decode("retry_maximum")))
    }

    static func eventRecord(_ row: PostgresRandomAccessRow) throws -> EventRecord {
        let name: String = try row.decode("type")
        guard let type = EventType(rawValue: name) else { throw StoredDataError("event with an unknown type \(name)") }
        return EventRecord(
            sequence: try row.decode("seq"), taskID: try row.decode("task_id"), coreID: try row.decode("core_id"),
            type: type, timestamp: try row.date("timestamp"), data: try JSONColumn.decode(try row.decode("data")))
    }

    // MARK: Writing

    /// Inserts `events` in order; returns them with their sequences.
    static func insertEvents(_ events: [PendingEvent], _ transaction: PostgresTransaction) async throws -> [EventRecord] {
        guard !events.isEmpty else { return [] }
        var binds = PostgresBindings(capacity: 5)
        bindEvents(events, into: &binds)
        let rows = try await transaction.rows(PostgresQuery(unsafeSQL: insertEventsSQL, binds: binds))
        return try records(events, rows)
    }

    /// `events` with the sequences an insert returned (`seq` rows; sorted, they are in insertion order).
    static func records(_ events: [PendingEvent], _ rows: [PostgresRandomAccessRow]) throws -> [EventRecord] {
        records(events, sequences: try rows.map { try $0.decode("seq", as: Int64.self) })
    }

    /// `events` with `sequences` (in any order; sorted, they are in insertion order).
    static func records(_ events: [PendingEvent], sequences: [Int64]) -> [EventRecord] {
        zip(events, sequences.sorted()).map { event, sequence in
            EventRecord(
                sequence: sequence, taskID: event.taskID, coreID: event.coreID, type: event.draft.type,
                timestamp: event.draft.timestamp, data: event.draft.data)
        }
    }

    static func insertEvents(_ drafts: [EventDraft], taskID: String?, coreID: String?, _ transaction: PostgresTransaction)
        async throws -> [EventRecord]
    {
        try await insertEvents(drafts.map { PendingEvent(draft: $0, taskID: taskID, coreID: coreID) }, transaction)
    }

    /// Stores changed tasks and their events in one statement, and queues the callbacks the
    /// events call for; returns each task with its stored events.
    static func store(_ transitions: [TaskTransition], _ transaction: PostgresTransaction) async throws
        -> [StoredTransition]
    {
        guard !transitions.isEmpty else { return [] }
        let pending = pendingEvents(transitions)
        var binds = bindings(taskRows(transitions.map(\.task)))
        bindEvents(pending, into: &binds)
        binds.append(transitions.map(\.task.id))
        let rows = try await transaction.rows(UpdateTasksWithEvents.self, binds)
        return try await storedTransitions(transitions, events: try records(pending, rows), transaction)
    }

    /// `$1` the tasks' rows, `$2`-`$6` the events (``bindEvents(_:into:)``), `$7` the tasks'
    /// ids: the tasks replaced and the events inserted in one statement, returning the events'
    /// sequences.
    static let updateTasksWithEventsSQL = """
        WITH updated AS (\(updateTasksSQL(ids: "$7")) RETURNING 1)
        \(insertEventsSQL(from: 2))
        """

    /// Pairs each transition with its share of `events` (in order) and queues its callbacks.
    static func storedTransitions(_ transitions: [TaskTransition], events: [EventRecord], _ transaction: PostgresTransaction)
        async throws -> [StoredTransition]
    {
        var stored = events[...]
        var results: [StoredTransition] = []
        for transition in transitions {
            let own = Array(stored.prefix(transition.events.count))
            stored = stored.dropFirst(transition.events.count)
            try await queueCallbacks(for: transition.task, events: own, transaction)
            results.append((transition.task, own))
        }
        return results
    }

    static func bindings(_ values: String...) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }
}

/// Data in the database that the store cannot read back (it never writes such data).
struct StoredDataError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A time bound to a statement exactly to the millisecond, as the store keeps times
/// (postgres-nio's own `Date` encoding truncates a double and can land a microsecond short,
/// which makes `timestamp > $1` take the very event the bound came from).
struct StoredTime: PostgresNonThrowingEncodable {
    var millis: Int64

    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Microseconds since 2000-01-01, PostgreSQL's epoch.
        byteBuffer.writeInteger((millis - 946_684_800_000) * 1000)
    }
}

extension Date {
    /// The time as a statement parameter (see ``StoredTime``).
    var sqlTime: StoredTime { StoredTime(millis: millis) }
}
