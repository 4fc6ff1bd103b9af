import Foundation
import OrchCore
import OrchModels
import NIOCore
import PostgresNIO

/// How tasks and events travel to PostgreSQL: any number of rows as one `jsonb` array, unpacked
/// by `jsonb_to_recordset` in a single statement, so a batch of 1,000 tasks is one round trip
/// and one statement plan, and a single task uses the same statement. Times travel as
/// milliseconds (`orch_ms`), JSON columns as their text (a JSON `null` result stays JSON).
extension PostgresStore {
    /// One column of `tasks`: its name and how its value travels.
    struct Field {
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
        }

        var name: String
        var kind: Kind

        /// The column value made from the recordset's `x.name`.
        var expression: String {
            switch kind {
            case .millis: "orch_ms(x.\(name))"
            case .json: "x.\(name)::jsonb"
            default: "x.\(name)"
            }
        }
    }

    static let taskFields: [Field] = [
        Field(name: "id", kind: .text), Field(name: "core_id", kind: .text), Field(name: "status", kind: .text),
        Field(name: "priority", kind: .bigint), Field(name: "timeout", kind: .bigint), Field(name: "stay", kind: .boolean),
        Field(name: "attempts", kind: .bigint), Field(name: "max_attempts", kind: .bigint),
        Field(name: "created_at", kind: .millis), Field(name: "updated_at", kind: .millis),
        Field(name: "started_at", kind: .millis), Field(name: "completed_at", kind: .millis),
        Field(name: "duration", kind: .double), Field(name: "progress", kind: .bigint),
        Field(name: "worker_id", kind: .text), Field(name: "metadata", kind: .json), Field(name: "result", kind: .json),
        Field(name: "error", kind: .json), Field(name: "ready_at", kind: .millis), Field(name: "lease_token", kind: .text),
        Field(name: "lease_expires_at", kind: .millis), Field(name: "lease_seconds", kind: .bigint),
        Field(name: "timeout_at", kind: .millis), Field(name: "cancel_requested", kind: .boolean),
        Field(name: "consecutive_failures", kind: .bigint), Field(name: "created_by", kind: .text),
    ]

    /// The recordset's column list, `id text, core_id text, ...`.
    static let taskRecordColumns = taskFields.map { "\($0.name) \($0.kind.recordType)" }.joined(separator: ", ")

    /// `$1` holds the tasks' rows; inserted in their order.
    static let insertTasksSQL = """
        INSERT INTO tasks (\(taskFields.map(\.name).joined(separator: ", ")))
        SELECT \(taskFields.map(\.expression).joined(separator: ", "))
        FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (\(taskRecordColumns)))
            WITH ORDINALITY AS x(\(taskFields.map(\.name).joined(separator: ", ")), ord)
        """

    /// `$1` holds the tasks' rows; each replaces the stored task with its id.
    static let updateTasksSQL = """
        UPDATE tasks SET \(taskFields.dropFirst().map { "\($0.name) = \($0.expression)" }.joined(separator: ", "))
        FROM jsonb_to_recordset($1::jsonb) AS x(\(taskRecordColumns))
        WHERE tasks.id = x.id
        """

    /// `$1` holds the events' rows; inserted in their order, returning their sequences.
    static let insertEventsSQL = insertEventsSQL(rows: "$1")

    /// The events of the parameter `rows` inserted in their order, returning their sequences;
    /// with `onlyIf`, only when the CTE of that name returned a row.
    static func insertEventsSQL(rows: String, onlyIf: String? = nil) -> String {
        """
        INSERT INTO events (task_id, core_id, type, timestamp, data)
        SELECT x.task_id, x.core_id, x.type, orch_ms(x.ts), x.data::jsonb
        FROM ROWS FROM (jsonb_to_recordset(\(rows)::jsonb) AS (task_id text, core_id text, type text, ts bigint, data text))
            WITH ORDINALITY AS x(task_id, core_id, type, ts, data, ord)
        \(onlyIf.map { "WHERE EXISTS (SELECT 1 FROM \($0))" } ?? "")
        ORDER BY x.ord
        RETURNING seq
        """
    }

    /// The columns every task read selects, JSON as text.
    static let taskColumns = """
        seq, id, core_id, status, priority, timeout, stay, attempts, max_attempts, created_at, updated_at, started_at,
        completed_at, duration, progress, worker_id, metadata::text AS metadata, result::text AS result,
        error::text AS error, ready_at, lease_token, lease_expires_at, lease_seconds, cancel_requested,
        consecutive_failures, created_by
        """

    static let eventColumns = "seq, task_id, core_id, type, timestamp, data::text AS data"

    /// The JSON array of `tasks`' rows.
    static func taskRows(_ tasks: [TaskRecord]) -> String {
        JSONValue.array(tasks.map(taskRow)).jsonText
    }

    static func taskRow(_ task: TaskRecord) -> JSONValue {
        func millis(_ date: Date?) -> JSONValue { date.map { .int($0.millis) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func int(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
        return .object([
            "id": .string(task.id), "core_id": .string(task.coreID), "status": .string(task.status.rawValue),
            "priority": int(task.priority), "timeout": int(task.timeout), "stay": .bool(task.stay),
            "attempts": int(task.attempts), "max_attempts": int(task.maxAttempts),
            "created_at": millis(task.createdAt), "updated_at": millis(task.updatedAt),
            "started_at": millis(task.startedAt), "completed_at": millis(task.completedAt),
            "duration": task.duration.map(JSONValue.double) ?? .null, "progress": int(task.progress),
            "worker_id": text(task.workerID), "metadata": .string(JSONValue.jsonText(task.metadata)),
            "result": text(task.result?.jsonText), "error": text(task.error?.jsonText),
            "ready_at": millis(task.readyAt), "lease_token": text(task.leaseToken),
            "lease_expires_at": millis(task.leaseExpiresAt), "lease_seconds": int(task.leaseSeconds),
            "timeout_at": millis(task.status == .running ? task.timeoutAt : nil),
            "cancel_requested": .bool(task.cancelRequested), "consecutive_failures": int(task.consecutiveFailures),
            "created_by": text(task.createdBy),
        ])
    }

    /// An event waiting for its sequence, with the task and core it belongs to.
    struct PendingEvent {
        var draft: EventDraft
        var taskID: String?
        var coreID: String?
    }

    static func eventRows(_ events: [PendingEvent]) -> String {
        JSONValue.array(
            events.map { event in
                .object([
                    "task_id": event.taskID.map(JSONValue.string) ?? .null,
                    "core_id": event.coreID.map(JSONValue.string) ?? .null,
                    "type": .string(event.draft.type.rawValue), "ts": .int(event.draft.timestamp.millis),
                    "data": .string(JSONValue.jsonText(event.draft.data)),
                ])
            }
        ).jsonText
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
            consecutiveFailures: try row.int("consecutive_failures"), createdBy: try row.decode("created_by"))
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
        let rows = try await transaction.rows(PostgresQuery(unsafeSQL: insertEventsSQL, binds: bindings(eventRows(events))))
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
        let pending = transitions.flatMap { transition in
            transition.events.map { PendingEvent(draft: $0, taskID: transition.task.id, coreID: transition.task.coreID) }
        }
        var binds = bindings(taskRows(transitions.map(\.task)))
        binds.append(eventRows(pending))
        let rows = try await transaction.rows(UpdateTasksWithEvents.self, binds)
        return try await storedTransitions(transitions, events: try records(pending, rows), transaction)
    }

    /// `$1` the tasks' rows, `$2` the events' rows: the tasks replaced and the events inserted
    /// in one statement, returning the events' sequences.
    static let updateTasksWithEventsSQL = """
        WITH updated AS (\(updateTasksSQL) RETURNING 1)
        \(insertEventsSQL(rows: "$2"))
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

    /// Inserts the events of `transitions` and queues their callbacks.
    static func storeEvents(of transitions: [TaskTransition], _ transaction: PostgresTransaction) async throws
        -> [StoredTransition]
    {
        let pending = transitions.flatMap { transition in
            transition.events.map { PendingEvent(draft: $0, taskID: transition.task.id, coreID: transition.task.coreID) }
        }
        return try await storedTransitions(transitions, events: try await insertEvents(pending, transaction), transaction)
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
