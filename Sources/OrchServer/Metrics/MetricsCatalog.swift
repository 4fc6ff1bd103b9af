/// Every metric the server exports: its name, type, help text, labels and (for histograms)
/// buckets. `/metrics` emits exactly these (the process metrics follow Prometheus's standard
/// names), and the README's metrics table is this list.
enum MetricsCatalog {
    enum Kind: String {
        case counter, gauge, histogram
    }

    struct Entry {
        let name: String
        let kind: Kind
        let help: String
        let labels: [String]
        /// Upper bounds in the metric's unit (seconds for durations); histograms only.
        let buckets: [Double]

        init(_ name: String, _ kind: Kind, _ help: String, labels: [String] = [], buckets: [Double] = []) {
            self.name = name
            self.kind = kind
            self.help = help
            self.labels = labels
            self.buckets = buckets
        }
    }

    static let httpRequests = Entry(
        "orch_http_requests_total", .counter, "Total HTTP requests", labels: ["method", "status", "endpoint"])
    static let httpRequestDuration = Entry(
        "orch_http_request_duration_seconds", .histogram,
        "Time from receiving a request to sending its response head", labels: ["method", "endpoint"],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    static let taskDuration = Entry(
        "orch_task_duration_seconds", .histogram, "Task execution duration", labels: ["core_id"],
        buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600])
    static let sseConnections = Entry("orch_sse_connections_active", .gauge, "Active SSE connections")
    static let connectionsOpen = Entry("orch_connections_open", .gauge, "Open client connections")
    static let connectionsRefused = Entry(
        "orch_connections_refused_total", .counter,
        "Connections refused at accept, by reason (capacity, address, shutdown)", labels: ["reason"])
    static let connectionsClosed = Entry(
        "orch_connections_closed_total", .counter,
        "Connections the server ended, by reason (header_timeout, body_timeout, idle_timeout, malformed, headers_too_large)",
        labels: ["reason"])
    static let webhookSignatures = Entry(
        "orch_webhook_signatures_verified_total", .counter, "Webhook signature verifications", labels: ["status"])
    static let tasksDispatched = Entry(
        "orch_tasks_dispatched_total", .counter, "Tasks created, by core", labels: ["core_id"])
    static let tasksFinished = Entry(
        "orch_tasks_finished_total", .counter, "Tasks that reached completed, failed or cancelled, by core and outcome",
        labels: ["core_id", "outcome"])
    static let queueDepth = Entry(
        "orch_queue_depth", .gauge, "Queued tasks waiting for a worker, by core", labels: ["core_id"])
    static let queueOldestAge = Entry(
        "orch_queue_oldest_age_seconds", .gauge, "How long the longest-waiting queued task has been claimable, by core",
        labels: ["core_id"])
    static let tasksScheduled = Entry(
        "orch_tasks_scheduled", .gauge, "Tasks waiting for their run_at (delayed, or backing off before a retry), by core",
        labels: ["core_id"])
    static let taskRetries = Entry(
        "orch_task_retries_total", .counter, "Runs that failed or lost their lease and were scheduled again, by core",
        labels: ["core_id"])
    static let scheduleFirings = Entry(
        "orch_schedule_firings_total", .counter, "Tasks dispatched by recurring schedules, by core", labels: ["core_id"])
    static let tasksPruned = Entry(
        "orch_tasks_pruned_total", .counter, "Finished tasks deleted by retention (ORCH_RETENTION)")
    static let eventsPruned = Entry(
        "orch_events_pruned_total", .counter, "Events deleted by retention, with their tasks or on their own")
    static let tasksRunning = Entry("orch_tasks_running", .gauge, "Tasks currently running")
    static let nodeInfo = Entry("orch_node_info", .gauge, "This node (always 1), by its ORCH_NODE_ID", labels: ["node_id"])
    static let clusterListener = Entry(
        "orch_cluster_listener_up", .gauge,
        "1 while this node hears the database's other nodes (PostgreSQL LISTEN), else 0; absent on SQLite")
    static let clusterLeader = Entry(
        "orch_cluster_leader", .gauge, "1 while this node leads the database's nodes (always on SQLite), else 0")
    static let locksHeld = Entry("orch_locks_held", .gauge, "Resource locks currently held")
    static let lockWaiters = Entry("orch_lock_waiters", .gauge, "Lock requests waiting for a held resource, on every node")
    static let lockWait = Entry(
        "orch_lock_wait_seconds", .histogram, "Time from a lock request to its grant",
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300])
    static let rateLimited = Entry(
        "orch_rate_limited_requests_total", .counter, "Requests refused with 429 by the rate limiter, by role",
        labels: ["role"])
    static let callbackDeliveries = Entry(
        "orch_webhook_deliveries_total", .counter,
        "Callback (outgoing webhook) delivery attempts, by outcome (delivered, retry, abandoned)", labels: ["outcome"])
    static let monitorSamples = Entry(
        "orch_monitor_samples_total", .counter, "Samples taken by the monitor")
    static let databaseLatency = Entry(
        "orch_database_latency_seconds", .gauge, "Round trip of a trivial database query at the last monitor sample")
    static let processResidentMemory = Entry(
        "process_resident_memory_bytes", .gauge, "Resident memory size in bytes")
    static let processVirtualMemory = Entry(
        "process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes")
    static let processCPU = Entry(
        "process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds")
    static let processOpenFDs = Entry("process_open_fds", .gauge, "Number of open file descriptors")
    static let processMaxFDs = Entry("process_max_fds", .gauge, "Maximum number of open file descriptors")
    static let processStartTime = Entry(
        "process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds")

    static let all: [Entry] = [
        httpRequests, httpRequestDuration, taskDuration, sseConnections, connectionsOpen, connectionsRefused,
        connectionsClosed, webhookSignatures, tasksDispatched,
        tasksFinished, queueDepth, queueOldestAge, tasksScheduled, taskRetries, scheduleFirings, tasksPruned, eventsPruned, tasksRunning, nodeInfo, clusterListener, clusterLeader,
        locksHeld, lockWaiters, lockWait, rateLimited,
        callbackDeliveries, monitorSamples, databaseLatency, processResidentMemory, processVirtualMemory, processCPU,
        processOpenFDs, processMaxFDs, processStartTime,
    ]

    static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
