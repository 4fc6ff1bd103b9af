import PostgresNIO

/// A statement the store runs on nearly every request, prepared once per connection.
///
/// An unnamed statement is parsed and planned again at every execution; for the dispatch and
/// task-change statements (several CTEs over a ten-index table) that planning took longer than
/// running them. Prepared, PostgreSQL plans them once per connection (and keeps a generic plan
/// once it has seen it is as good), and postgres-nio prepares each on a connection the first
/// time it is used there.
protocol PreparedSQL {
    static var sql: String { get }
    /// The types of the parameters, declared when a parameter may be `NULL` on its first use
    /// (which would otherwise fix its type from the statement's context, `jsonb` for a
    /// `$n::jsonb`, and refuse the text sent later). Empty: taken from the first bindings.
    static var parameterTypes: [PostgresDataType] { get }
}

extension PreparedSQL {
    static var parameterTypes: [PostgresDataType] { [] }
}

/// A prepared execution of `Statement` with its parameters.
struct Prepared<Statement: PreparedSQL>: PostgresPreparedStatement {
    static var sql: String { Statement.sql }
    static var bindingDataTypes: [PostgresDataType] { Statement.parameterTypes }

    var bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRandomAccessRow { row.makeRandomAccess() }
}

extension PostgresTransaction {
    /// Runs the prepared `statement` with `bindings`; returns its rows.
    func rows<Statement: PreparedSQL>(_ statement: Statement.Type, _ bindings: PostgresBindings) async throws
        -> [PostgresRandomAccessRow]
    {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await connection.execute(Prepared<Statement>(bindings: bindings), logger: logger) {
            rows.append(row)
        }
        return rows
    }
}

extension PostgresStore {
    /// Runs the prepared `statement` outside an explicit transaction (it commits by itself).
    func rows<Statement: PreparedSQL>(_ statement: Statement.Type, _ bindings: PostgresBindings) async throws
        -> [PostgresRandomAccessRow]
    {
        try await autocommit { transaction in try await transaction.rows(statement, bindings) }
    }

    // MARK: The prepared statements

    /// A dispatch without an idempotency key (see ``PostgresStore/insertTask(_:idempotency:activeSince:)``).
    enum Dispatch: PreparedSQL {
        static let sql = PostgresStore.dispatchSQL(keyed: false)
        static let parameterTypes = PostgresStore.dispatchParameterTypes(keyed: false)
    }

    /// A dispatch claiming its idempotency key first.
    enum KeyedDispatch: PreparedSQL {
        static let sql = PostgresStore.dispatchSQL(keyed: true)
        static let parameterTypes = PostgresStore.dispatchParameterTypes(keyed: true)
    }

    /// A batch of new tasks (see ``PostgresStore/insertBatchSQL``).
    enum InsertBatch: PreparedSQL {
        static let sql = PostgresStore.insertBatchSQL
        static let parameterTypes =
            [.text] + PostgresStore.eventParameterTypes + [.textArray, .textArray, .int8Array, .int8Array, .timestamptz]
    }

    /// `$1` a task id: the task with its row version.
    enum TaskWithVersion: PreparedSQL {
        static let sql = "SELECT xmin::text AS version, \(PostgresStore.taskColumns) FROM tasks WHERE id = $1"
    }

    /// `$1` task ids: those tasks with their row versions.
    enum TasksWithVersions: PreparedSQL {
        static let sql = "SELECT xmin::text AS version, \(PostgresStore.taskColumns) FROM tasks WHERE id = ANY($1::text[])"
    }

    /// See ``PostgresStore/updateChangedTasksSQL``.
    enum UpdateChangedTasks: PreparedSQL {
        static let sql = PostgresStore.updateChangedTasksSQL
        static let parameterTypes = [.text] + PostgresStore.eventParameterTypes + [.textArray]
    }

    /// See ``PostgresStore/updateTaskIfUnchangedSQL``.
    enum UpdateTaskIfUnchanged: PreparedSQL {
        static let sql = PostgresStore.updateTaskIfUnchangedSQL
        static let parameterTypes = PostgresStore.updateTaskIfUnchangedParameterTypes
    }

    /// See ``PostgresStore/updateTasksWithEventsSQL``.
    enum UpdateTasksWithEvents: PreparedSQL {
        static let sql = PostgresStore.updateTasksWithEventsSQL
        static let parameterTypes = [.text] + PostgresStore.eventParameterTypes + [.textArray]
    }

    /// `$1` worker, `$2` core, `$3` now, `$4` limit: the worker recorded and the core's ready
    /// tasks taken in claim order.
    enum Claim: PreparedSQL {
        static let sql = """
            WITH seen AS (
                INSERT INTO workers (worker_id, core_id, last_seen) VALUES ($1, $2, $3)
                ON CONFLICT (core_id, worker_id) DO UPDATE SET last_seen = excluded.last_seen)
            SELECT \(PostgresStore.taskColumns) FROM tasks
            WHERE core_id = $2 AND status = 'queued' AND ready_at <= $3
                AND NOT EXISTS (SELECT 1 FROM cores WHERE core_id = $2 AND (paused OR max_running IS NOT NULL))
            ORDER BY priority DESC, ready_at, seq LIMIT $4
            FOR UPDATE OF tasks SKIP LOCKED
            """
    }
}
