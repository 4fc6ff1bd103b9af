import GRDB

/// The SQLite schema, as numbered migrations applied in order at start. A migration, once
/// released, is never edited: changes come as a new one.
enum SQLiteMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001_settings_and_users", migrate: migration001)
        migrator.registerMigration("002_tasks_and_events", migrate: migration002)
        migrator.registerMigration("003_locks", migrate: migration003)
        migrator.registerMigration("004_webhook_receipts", migrate: migration004)
        migrator.registerMigration("005_callback_deliveries", migrate: migration005)
        migrator.registerMigration("006_api_tokens", migrate: migration006)
        migrator.registerMigration("007_queue_counts", migrate: migration007)
        migrator.registerMigration("008_task_counts", migrate: migration008)
        migrator.registerMigration("009_core_created_index", migrate: migration009)
        migrator.registerMigration("010_task_page_indexes", migrate: migration010)
        migrator.registerMigration("011_user_token_generation", migrate: migration011)
        migrator.registerMigration("012_lock_queue_nodes_login_failures", migrate: migration012)
        migrator.registerMigration("013_scheduled_tasks_retry_policy_cores", migrate: migration013)
        migrator.registerMigration("014_schedules", migrate: migration014)
        migrator.registerMigration("015_retention_indexes", migrate: migration015)
        return migrator
    }

    static func migration001(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE settings (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                CREATE TABLE users (
                    id TEXT PRIMARY KEY NOT NULL,
                    username TEXT NOT NULL COLLATE NOCASE UNIQUE,
                    email TEXT NOT NULL COLLATE NOCASE UNIQUE,
                    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'system')),
                    password_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    last_login INTEGER,
                    is_active INTEGER NOT NULL DEFAULT 1,
                    metadata TEXT NOT NULL DEFAULT '{}'
                );
                CREATE INDEX users_created ON users (created_at, id);
                """)
    }

    static func migration002(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE tasks (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    core_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    timeout INTEGER NOT NULL,
                    stay INTEGER NOT NULL,
                    attempts INTEGER NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    started_at INTEGER,
                    completed_at INTEGER,
                    duration REAL,
                    progress INTEGER,
                    worker_id TEXT,
                    metadata TEXT NOT NULL,
                    result TEXT,
                    error TEXT,
                    ready_at INTEGER NOT NULL,
                    lease_token TEXT,
                    lease_expires_at INTEGER,
                    lease_seconds INTEGER,
                    timeout_at INTEGER,
                    cancel_requested INTEGER NOT NULL DEFAULT 0,
                    consecutive_failures INTEGER NOT NULL DEFAULT 0,
                    created_by TEXT
                );
                CREATE INDEX tasks_claim_order ON tasks (core_id, priority DESC, ready_at, seq) WHERE status = 'queued';
                CREATE INDEX tasks_lease_deadline ON tasks (lease_expires_at) WHERE status = 'running';
                CREATE INDEX tasks_timeout_deadline ON tasks (timeout_at) WHERE status = 'running';
                CREATE INDEX tasks_created ON tasks (created_at, seq);
                CREATE INDEX tasks_updated ON tasks (updated_at, seq);
                CREATE INDEX tasks_status ON tasks (status, created_at);
                CREATE INDEX tasks_core ON tasks (core_id, status, completed_at);

                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    task_id TEXT,
                    core_id TEXT,
                    type TEXT NOT NULL,
                    timestamp INTEGER NOT NULL,
                    data TEXT NOT NULL
                );
                CREATE INDEX events_task ON events (task_id, seq);

                CREATE TABLE idempotency_keys (
                    user_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    task_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (user_id, key)
                );

                CREATE TABLE workers (
                    worker_id TEXT NOT NULL,
                    core_id TEXT NOT NULL,
                    last_seen INTEGER NOT NULL,
                    PRIMARY KEY (core_id, worker_id)
                );
                """)
    }

    static func migration003(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE locks (
                    lock_id TEXT PRIMARY KEY NOT NULL,
                    resource TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    ttl INTEGER NOT NULL,
                    fencing_token INTEGER NOT NULL,
                    acquired_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('held', 'expired'))
                );
                CREATE UNIQUE INDEX locks_held ON locks (resource) WHERE state = 'held';
                CREATE INDEX locks_expiry ON locks (expires_at) WHERE state = 'held';
                CREATE INDEX locks_expired ON locks (expires_at) WHERE state = 'expired';
                CREATE TABLE counters (
                    name TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL
                );
                """)
    }

    static func migration004(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE webhook_receipts (
                    key TEXT PRIMARY KEY NOT NULL,
                    answer TEXT NOT NULL,
                    received_at INTEGER NOT NULL
                );
                CREATE INDEX webhook_receipts_age ON webhook_receipts (received_at);
                """)
    }

    static func migration005(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE callback_deliveries (
                    id TEXT PRIMARY KEY NOT NULL,
                    task_id TEXT NOT NULL,
                    core_id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    body BLOB NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX callback_deliveries_due ON callback_deliveries (next_attempt_at) WHERE state = 'pending';
                """)
    }

    static func migration006(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE api_tokens (
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users (id),
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    digest TEXT NOT NULL UNIQUE,
                    prefix TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    last_used_at INTEGER,
                    revoked_at INTEGER
                );
                CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);
                """)
    }

    /// Queued tasks per core and priority, kept exact by triggers in the same transaction as
    /// every change to `tasks`, so a new task's queue position is a sum over at most ten rows
    /// instead of a count over the whole queue.
    static func migration007(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE queue_counts (
                    core_id TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    n INTEGER NOT NULL,
                    PRIMARY KEY (core_id, priority)
                ) WITHOUT ROWID;
                INSERT INTO queue_counts (core_id, priority, n)
                    SELECT core_id, priority, count(*) FROM tasks WHERE status = 'queued' GROUP BY core_id, priority;
                CREATE TRIGGER tasks_queue_counts_insert AFTER INSERT ON tasks WHEN NEW.status = 'queued' BEGIN
                    INSERT INTO queue_counts (core_id, priority, n) VALUES (NEW.core_id, NEW.priority, 1)
                        ON CONFLICT (core_id, priority) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER tasks_queue_counts_update AFTER UPDATE OF status, priority, core_id ON tasks
                WHEN OLD.status = 'queued' OR NEW.status = 'queued' BEGIN
                    UPDATE queue_counts SET n = n - 1
                        WHERE OLD.status = 'queued' AND core_id = OLD.core_id AND priority = OLD.priority;
                    INSERT INTO queue_counts (core_id, priority, n) SELECT NEW.core_id, NEW.priority, 1
                        WHERE NEW.status = 'queued'
                        ON CONFLICT (core_id, priority) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER tasks_queue_counts_delete AFTER DELETE ON tasks WHEN OLD.status = 'queued' BEGIN
                    UPDATE queue_counts SET n = n - 1 WHERE core_id = OLD.core_id AND priority = OLD.priority;
                END;
                """)
    }

    /// Tasks per core, status and priority, kept exact by triggers like `queue_counts` (which
    /// this replaces: it is the `queued` slice). `GET /tasks` answers `total_tasks` for any mix
    /// of the status, core and priority filters as a sum over these rows instead of counting
    /// matching tasks (a million-task store made that count the slowest part of the page).
    static func migration008(_ db: Database) throws {
        try db.execute(
            sql: """
                DROP TRIGGER tasks_queue_counts_insert;
                DROP TRIGGER tasks_queue_counts_update;
                DROP TRIGGER tasks_queue_counts_delete;
                DROP TABLE queue_counts;
                CREATE TABLE task_counts (
                    core_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    n INTEGER NOT NULL,
                    PRIMARY KEY (core_id, status, priority)
                ) WITHOUT ROWID;
                CREATE INDEX task_counts_status ON task_counts (status, priority);
                INSERT INTO task_counts (core_id, status, priority, n)
                    SELECT core_id, status, priority, count(*) FROM tasks GROUP BY core_id, status, priority;
                CREATE TRIGGER tasks_counts_insert AFTER INSERT ON tasks BEGIN
                    INSERT INTO task_counts (core_id, status, priority, n) VALUES (NEW.core_id, NEW.status, NEW.priority, 1)
                        ON CONFLICT (core_id, status, priority) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER tasks_counts_update AFTER UPDATE OF status, priority, core_id ON tasks
                WHEN OLD.status != NEW.status OR OLD.priority != NEW.priority OR OLD.core_id != NEW.core_id BEGIN
                    UPDATE task_counts SET n = n - 1
                        WHERE core_id = OLD.core_id AND status = OLD.status AND priority = OLD.priority;
                    INSERT INTO task_counts (core_id, status, priority, n) VALUES (NEW.core_id, NEW.status, NEW.priority, 1)
                        ON CONFLICT (core_id, status, priority) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER tasks_counts_delete AFTER DELETE ON tasks BEGIN
                    UPDATE task_counts SET n = n - 1
                        WHERE core_id = OLD.core_id AND status = OLD.status AND priority = OLD.priority;
                END;
                """)
    }

    /// `GET /tasks?core_id=…&status=…` in creation order straight from an index: the old
    /// `(core_id, status, completed_at)` index served only the core's recent durations, which
    /// now read the most recently created completed tasks instead (same index).
    static func migration009(_ db: Database) throws {
        try db.execute(
            sql: """
                DROP INDEX tasks_core;
                CREATE INDEX tasks_core_created ON tasks (core_id, status, created_at);
                """)
    }

    /// Indexes for the `GET /tasks` pages an operator asks for most, so that each is read in
    /// order from an index instead of sorting every matching task (with a million tasks a
    /// core's page took 20-30 ms): a core's tasks newest first, a core's tasks by priority, and
    /// tasks of a status by last change. Together with `tasks_created`, `tasks_updated`,
    /// `tasks_status (status, created_at)` and `tasks_core_created (core_id, status,
    /// created_at)`, every filter on status and/or core sorted by creation, a status sorted by
    /// change and a core sorted by priority come from an index.
    static func migration010(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX tasks_core_all_created ON tasks (core_id, created_at);
                CREATE INDEX tasks_core_priority ON tasks (core_id, priority);
                CREATE INDEX tasks_status_updated ON tasks (status, updated_at);
                """)
    }

    /// Each user's session generation: access tokens carry the generation they were issued in,
    /// and a new password, a deactivation or a role change moves it on, so every earlier token
    /// is refused for good (a counter, not a time, so no clock can make an old token valid).
    static func migration011(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0")
    }

    /// The lock wait queue of every node (``LockStore``), the nodes seen (one, on SQLite, but
    /// the same rules), the waiter each lock was handed to, and failed logins per key
    /// (``LoginFailureStore``), which now survive a restart.
    static func migration012(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE lock_waiters (
                    arrival INTEGER PRIMARY KEY AUTOINCREMENT,
                    waiter_id TEXT NOT NULL UNIQUE,
                    resource TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    ttl INTEGER NOT NULL,
                    priority INTEGER NOT NULL,
                    node_id TEXT NOT NULL,
                    enqueued_at INTEGER NOT NULL,
                    deadline INTEGER NOT NULL
                );
                CREATE INDEX lock_waiters_queue ON lock_waiters (resource, priority DESC, arrival);
                CREATE INDEX lock_waiters_node ON lock_waiters (node_id);
                CREATE TABLE nodes (
                    node_id TEXT PRIMARY KEY NOT NULL,
                    seen_at INTEGER NOT NULL
                );
                ALTER TABLE locks ADD COLUMN waiter_id TEXT;
                CREATE INDEX locks_waiter ON locks (waiter_id) WHERE waiter_id IS NOT NULL;
                CREATE TABLE login_failures (
                    key TEXT PRIMARY KEY NOT NULL,
                    failures INTEGER NOT NULL,
                    last_failure INTEGER NOT NULL
                );
                CREATE INDEX login_failures_last ON login_failures (last_failure);
                """)
    }

    /// Delayed tasks and retries: the `scheduled` status (tasks not claimable before their
    /// `ready_at`, found by the promoter through their own index; queued tasks that were
    /// backing off become scheduled), each task's retry policy, and the cores' settings
    /// (paused, running cap).
    static func migration013(_ db: Database) throws {
        try db.execute(
            sql: """
                ALTER TABLE tasks ADD COLUMN retry_initial REAL NOT NULL DEFAULT 1;
                ALTER TABLE tasks ADD COLUMN retry_coefficient REAL NOT NULL DEFAULT 2;
                ALTER TABLE tasks ADD COLUMN retry_maximum REAL NOT NULL DEFAULT 300;
                CREATE INDEX tasks_scheduled ON tasks (ready_at) WHERE status = 'scheduled';
                UPDATE tasks SET status = 'scheduled'
                    WHERE status = 'queued' AND ready_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000;
                CREATE TABLE cores (
                    core_id TEXT PRIMARY KEY NOT NULL,
                    paused INTEGER NOT NULL DEFAULT 0,
                    max_running INTEGER,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
    }

    /// Recurring schedules, due ones found by their own index, and one key per fired slot.
    static func migration014(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE schedules (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    core_id TEXT NOT NULL,
                    cron TEXT,
                    every TEXT,
                    timezone TEXT NOT NULL,
                    template TEXT NOT NULL,
                    paused INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    anchor_at INTEGER NOT NULL,
                    next_run_at INTEGER,
                    last_run_at INTEGER,
                    last_task_id TEXT,
                    created_by TEXT
                ) WITHOUT ROWID;
                CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0 AND next_run_at IS NOT NULL;
                CREATE TABLE schedule_firings (
                    schedule_id TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    task_id TEXT NOT NULL,
                    fired_at INTEGER NOT NULL,
                    PRIMARY KEY (schedule_id, slot)
                ) WITHOUT ROWID;
                """)
    }

    /// What retention deletes by (``RetentionStore``): a task's callback deliveries, events that
    /// belong to no task by age, idempotency keys by age.
    static func migration015(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX callback_deliveries_task ON callback_deliveries (task_id);
                CREATE INDEX events_untasked_age ON events (timestamp) WHERE task_id IS NULL;
                CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
                """)
    }
}
