/// Every type of event the server stores and streams; the raw values are the wire names.
public enum EventType: String, Sendable, Hashable, CaseIterable, Codable {
    case taskCreated = "task.created"
    case taskStarted = "task.started"
    case taskProgress = "task.progress"
    case taskCompleted = "task.completed"
    case taskFailed = "task.failed"
    case taskCancelled = "task.cancelled"
    case taskRequeued = "task.requeued"
    /// A `scheduled` task reached its `run_at` and joined its core's queue.
    case taskReady = "task.ready"
    case lockAcquired = "lock.acquired"
    case lockReleased = "lock.released"
    case lockExpired = "lock.expired"
    case webhookReceived = "webhook.received"
    case webhookDelivered = "webhook.delivered"
    case webhookFailed = "webhook.failed"
    case systemAlert = "system.alert"
    /// A core was paused, resumed or given another running cap (`PATCH /cores/{core_id}`).
    case coreUpdated = "core.updated"
}
