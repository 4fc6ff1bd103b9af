import Foundation
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations applied in order at start, each recorded in
/// `schema_migrations`. All of them run in one transaction under an advisory lock, so servers
/// starting at once never race: the second waits, then finds nothing left to do. A migration,
/// once released, is never edited: changes come as a new one.
///
/// The schema mirrors the SQLite one (see ``SQLiteMigrations``), in PostgreSQL's types:
/// `timestamptz` for times, `jsonb` for JSON, `bigint` identities for sequences, unique indexes
/// on `lower(username)` and `lower(email)` for case-insensitive names. Two things differ on
/// purpose:
/// - per-core task counts are kept in 64 shards, one per connection (see ``schema002``),
///   so that concurrent transactions never wait on one counter row (a single hot row cut
///   `pgbench` inserts from 14,000 to 1,500 per second here);
/// - fencing tokens come from a sequence, which never hands out a value twice.
enum PostgresMigrations {
    static let migrations: [(name: String, sql: String)] = [
        ("001_schema", schema001),
        ("002_cheaper_row_functions", schema002),
        ("003_lock_queue_nodes_login_failures", schema003),
        ("004_scheduled_tasks_retry_policy_cores", schema004),
        ("005_schedules", schema005),
        ("006_retention_indexes", schema006),
    ]

    static func apply(_ transaction: PostgresTransaction) async throws {
        try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresLocks.migrations), 0)")
        try await transaction.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        let applied = Set(try await transaction.rows("SELECT name FROM schema_migrations").map { try $0.decode("name", as: String.self) })
        for migration in migrations where !applied.contains(migration.name) {
            // One statement per query: the extended protocol runs a single statement at a time.
            for statement in statements(migration.sql) {
                try await transaction.execute(PostgresQuery(unsafeSQL: statement))
            }
            try await transaction.execute("INSERT INTO schema_migrations (name) VALUES (\(migration.name))")
        }
    }

    /// Splits a migration at the `;` that end its statements; a function body between `$$`
    /// marks is kept whole.
    static func statements(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var inBody = false
        var index = sql.startIndex
        while index < sql.endIndex {
            if sql[index...].hasPrefix("$$") {
                inBody.toggle()
                current += "$$"
                index = sql.index(index, offsetBy: 2)
                continue
            }
            let character = sql[index]
            if character == ";" && !inBody {
                let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { statements.append(trimmed) }
                current = ""
            } else {
                current.append(character)
            }
            index = sql.index(after: index)
        }
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { statements.append(trimmed) }
        return statements
    }

    static let schema001 = """
        CREATE TABLE settings (
            key text PRIMARY KEY,
            value text NOT NULL
        );

        -- Milliseconds since 1970, as the store sends times in batches of rows, to a timestamp.
        CREATE FUNCTION orch_ms(ms bigint) RETURNS timestamptz
        LANGUAGE sql IMMUTABLE AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$;

        CREATE TABLE users (
            id text PRIMARY KEY,
            username text NOT NULL,
            email text NOT NULL,
            role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'system')),
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL,
            last_login timestamptz,
            is_active boolean NOT NULL DEFAULT true,
            metadata jsonb NOT NULL DEFAULT '{}',
            token_generation bigint NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX users_username ON users (lower(username));
        CREATE UNIQUE INDEX users_email ON users (lower(email));
        CREATE INDEX users_created ON users (created_at, id);

        CREATE TABLE tasks (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            core_id text NOT NULL,
            status text NOT NULL,
            priority bigint NOT NULL,
            timeout bigint NOT NULL,
            stay boolean NOT NULL,
            attempts bigint NOT NULL,
            max_attempts bigint NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            started_at timestamptz,
            completed_at timestamptz,
            duration double precision,
            progress bigint,
            worker_id text,
            metadata jsonb NOT NULL,
            result jsonb,
            error jsonb,
            ready_at timestamptz NOT NULL,
            lease_token text,
            lease_expires_at timestamptz,
            lease_seconds bigint,
            timeout_at timestamptz,
            cancel_requested boolean NOT NULL DEFAULT false,
            consecutive_failures bigint NOT NULL DEFAULT 0,
            created_by text
        );
        CREATE INDEX tasks_claim_order ON tasks (core_id, priority DESC, ready_at, seq) WHERE status = 'queued';
        CREATE INDEX tasks_lease_deadline ON tasks (lease_expires_at) WHERE status = 'running';
        CREATE INDEX tasks_timeout_deadline ON tasks (timeout_at) WHERE status = 'running';
        CREATE INDEX tasks_created ON tasks (created_at, seq);
        CREATE INDEX tasks_updated ON tasks (updated_at, seq);
        CREATE INDEX tasks_status ON tasks (status, created_at);
        CREATE INDEX tasks_status_updated ON tasks (status, updated_at);
        CREATE INDEX tasks_core_created ON tasks (core_id, status, created_at);
        CREATE INDEX tasks_core_all_created ON tasks (core_id, created_at);
        CREATE INDEX tasks_core_priority ON tasks (core_id, priority);

        CREATE TABLE task_counts (
            core_id text NOT NULL,
            status text NOT NULL,
            priority bigint NOT NULL,
            shard integer NOT NULL,
            n bigint NOT NULL,
            PRIMARY KEY (core_id, status, priority, shard)
        );
        CREATE INDEX task_counts_status ON task_counts (status, priority);

        CREATE FUNCTION orch_count_task(core text, state text, prio bigint, delta bigint) RETURNS void
        LANGUAGE sql AS $$
            INSERT INTO task_counts (core_id, status, priority, shard, n)
            VALUES (core, state, prio, pg_backend_pid() % 32, delta)
            ON CONFLICT (core_id, status, priority, shard) DO UPDATE SET n = task_counts.n + excluded.n
        $$;

        CREATE FUNCTION orch_tasks_counted() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                PERFORM orch_count_task(NEW.core_id, NEW.status, NEW.priority, 1);
            ELSIF TG_OP = 'DELETE' THEN
                PERFORM orch_count_task(OLD.core_id, OLD.status, OLD.priority, -1);
            ELSIF OLD.status IS DISTINCT FROM NEW.status OR OLD.priority IS DISTINCT FROM NEW.priority
                OR OLD.core_id IS DISTINCT FROM NEW.core_id THEN
                PERFORM orch_count_task(OLD.core_id, OLD.status, OLD.priority, -1);
                PERFORM orch_count_task(NEW.core_id, NEW.status, NEW.priority, 1);
            END IF;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE OR UPDATE OF status, priority, core_id ON tasks
            FOR EACH ROW EXECUTE FUNCTION orch_tasks_counted();

        CREATE TABLE events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            task_id text,
            core_id text,
            type text NOT NULL,
            timestamp timestamptz NOT NULL,
            data jsonb NOT NULL
        );
        CREATE INDEX events_task ON events (task_id, seq);

        CREATE TABLE idempotency_keys (
            user_id text NOT NULL,
            key text NOT NULL,
            fingerprint text NOT NULL,
            task_id text NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (user_id, key)
        );

        CREATE TABLE workers (
            worker_id text NOT NULL,
            core_id text NOT NULL,
            last_seen timestamptz NOT NULL,
            PRIMARY KEY (core_id, worker_id)
        );

        CREATE TABLE locks (
            lock_id text PRIMARY KEY,
            resource text NOT NULL,
            owner text NOT NULL,
            priority bigint NOT NULL,
            ttl bigint NOT NULL,
            fencing_token bigint NOT NULL,
            acquired_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            state text NOT NULL CHECK (state IN ('held', 'expired'))
        );
        CREATE UNIQUE INDEX locks_held ON locks (resource) WHERE state = 'held';
        CREATE INDEX locks_expiry ON locks (expires_at) WHERE state = 'held';
        CREATE INDEX locks_expired ON locks (expires_at) WHERE state = 'expired';
        CREATE SEQUENCE fencing_tokens AS bigint;

        CREATE TABLE webhook_receipts (
            key text PRIMARY KEY,
            answer text NOT NULL,
            received_at timestamptz NOT NULL
        );
        CREATE INDEX webhook_receipts_age ON webhook_receipts (received_at);

        CREATE TABLE callback_deliveries (
            id text PRIMARY KEY,
            task_id text NOT NULL,
            core_id text NOT NULL,
            url text NOT NULL,
            body bytea NOT NULL,
            attempts bigint NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
            created_at timestamptz NOT NULL
        );
        CREATE INDEX callback_deliveries_due ON callback_deliveries (next_attempt_at) WHERE state = 'pending';

        CREATE TABLE api_tokens (
            id text PRIMARY KEY,
            user_id text NOT NULL REFERENCES users (id),
            name text NOT NULL,
            role text NOT NULL,
            digest text NOT NULL UNIQUE,
            prefix text NOT NULL,
            created_at timestamptz NOT NULL,
            expires_at timestamptz,
            last_used_at timestamptz,
            revoked_at timestamptz
        );
        CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at)
        """

    /// Two functions that ran on every dispatch cost more than the insert itself (profiled
    /// with `perf` under `pgbench`): an SQL function is parsed and planned again at each call
    /// unless it can be inlined, and PostgreSQL inlines none that is declared `IMMUTABLE` over
    /// a `STABLE` operator (`timestamptz + interval`). `orch_ms` is therefore declared
    /// `STABLE`, which it is, and inlined; the counting trigger does its upserts itself
    /// (PL/pgSQL keeps their plans) instead of calling an SQL function.
    ///
    /// The count shard was `pg_backend_pid() % 32`: twenty pooled connections then share
    /// shards in pairs (six pairs on average), and every change of a task waited on its twin's
    /// row lock until that one's commit (25 ms under load, seen with `auto_explain`). Now each
    /// connection takes the next of 64 shards from a sequence on its first count and keeps it
    /// for the session (`orch.count_shard`), so connections opened together never share one.
    static let schema002 = """
        CREATE OR REPLACE FUNCTION orch_ms(ms bigint) RETURNS timestamptz
        LANGUAGE sql STABLE AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$;

        CREATE SEQUENCE orch_count_shards AS bigint;

        CREATE OR REPLACE FUNCTION orch_tasks_counted() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            my_shard integer := nullif(current_setting('orch.count_shard', true), '')::integer;
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status
                AND OLD.priority IS NOT DISTINCT FROM NEW.priority AND OLD.core_id IS NOT DISTINCT FROM NEW.core_id THEN
                RETURN NULL;
            END IF;
            IF my_shard IS NULL THEN
                my_shard := nextval('orch_count_shards') % 64;
                PERFORM set_config('orch.count_shard', my_shard::text, false);
            END IF;
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO task_counts AS c (core_id, status, priority, shard, n)
                VALUES (OLD.core_id, OLD.status, OLD.priority, my_shard, -1)
                ON CONFLICT (core_id, status, priority, shard) DO UPDATE SET n = c.n - 1;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO task_counts AS c (core_id, status, priority, shard, n)
                VALUES (NEW.core_id, NEW.status, NEW.priority, my_shard, 1)
                ON CONFLICT (core_id, status, priority, shard) DO UPDATE SET n = c.n + 1;
            END IF;
            RETURN NULL;
        END
        $$;

        DROP FUNCTION orch_count_task(text, text, bigint, bigint)
        """

    /// The lock wait queue shared by every node (``LockStore``), the nodes seen, the waiter
    /// each lock was handed to, and failed logins per key shared by every node
    /// (``LoginFailureStore``).
    static let schema003 = """
        CREATE TABLE lock_waiters (
            arrival bigserial PRIMARY KEY,
            waiter_id text NOT NULL UNIQUE,
            resource text NOT NULL,
            owner text NOT NULL,
            ttl bigint NOT NULL,
            priority bigint NOT NULL,
            node_id text NOT NULL,
            enqueued_at timestamptz NOT NULL,
            deadline timestamptz NOT NULL
        );
        CREATE INDEX lock_waiters_queue ON lock_waiters (resource, priority DESC, arrival);
        CREATE INDEX lock_waiters_node ON lock_waiters (node_id);
        CREATE TABLE nodes (
            node_id text PRIMARY KEY,
            seen_at timestamptz NOT NULL
        );
        ALTER TABLE locks ADD COLUMN waiter_id text;
        CREATE INDEX locks_waiter ON locks (waiter_id) WHERE waiter_id IS NOT NULL;
        CREATE TABLE login_failures (
            key text PRIMARY KEY,
            failures bigint NOT NULL,
            last_failure timestamptz NOT NULL
        );
        CREATE INDEX login_failures_last ON login_failures (last_failure)
        """

    /// Delayed tasks and retries: the `scheduled` status with its own index (queued tasks
    /// that were backing off become scheduled), each task's retry policy, and the cores'
    /// settings (paused, running cap).
    static let schema004 = """
        ALTER TABLE tasks ADD COLUMN retry_initial double precision NOT NULL DEFAULT 1;
        ALTER TABLE tasks ADD COLUMN retry_coefficient double precision NOT NULL DEFAULT 2;
        ALTER TABLE tasks ADD COLUMN retry_maximum double precision NOT NULL DEFAULT 300;
        CREATE INDEX tasks_scheduled ON tasks (ready_at) WHERE status = 'scheduled';
        UPDATE tasks SET status = 'scheduled' WHERE status = 'queued' AND ready_at > now();
        CREATE TABLE cores (
            core_id text PRIMARY KEY,
            paused boolean NOT NULL DEFAULT false,
            max_running bigint,
            updated_at timestamptz NOT NULL
        )
        """

    /// Recurring schedules, due ones found by their own index, and one key per fired slot.
    /// What retention deletes by (``RetentionStore``), as SQLite's 015.
    static let schema006 = """
        CREATE INDEX callback_deliveries_task ON callback_deliveries (task_id);
        CREATE INDEX events_untasked_age ON events (timestamp) WHERE task_id IS NULL;
        CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
        """

    static let schema005 = """
        CREATE TABLE schedules (
            id text PRIMARY KEY,
            name text NOT NULL UNIQUE,
            core_id text NOT NULL,
            cron text,
            every text,
            timezone text NOT NULL,
            template jsonb NOT NULL,
            paused boolean NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            anchor_at timestamptz NOT NULL,
            next_run_at timestamptz,
            last_run_at timestamptz,
            last_task_id text,
            created_by text
        );
        CREATE INDEX schedules_due ON schedules (next_run_at) WHERE NOT paused AND next_run_at IS NOT NULL;
        CREATE TABLE schedule_firings (
            schedule_id text NOT NULL,
            slot timestamptz NOT NULL,
            task_id text NOT NULL,
            fired_at timestamptz NOT NULL,
            PRIMARY KEY (schedule_id, slot)
        )
        """
}
