import Foundation
import OrchCore
import OrchModels

/// Filters, order and page of `GET /tasks`.
public struct TaskQuery: Sendable, Hashable {
    /// The fields tasks can be sorted by.
    public enum SortField: String, Sendable, CaseIterable {
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case priority
    }

    /// Sort direction.
    public enum Order: String, Sendable, CaseIterable {
        case asc, desc
    }

    public var status: TaskStatus?
    public var coreID: String?
    public var priority: Int?
    public var sort: SortField
    public var order: Order
    public var limit: Int
    public var offset: Int

    public init(
        status: TaskStatus? = nil, coreID: String? = nil, priority: Int? = nil, sort: SortField = .createdAt,
        order: Order = .desc, limit: Int = 50, offset: Int = 0
    ) {
        self.status = status
        self.coreID = coreID
        self.priority = priority
        self.sort = sort
        self.order = order
        self.limit = limit
        self.offset = offset
    }
}

/// Which tasks a bulk action takes: every filter given must hold.
public struct TaskFilter: Sendable, Hashable {
    public var coreID: String?
    /// Any of these statuses (all when empty).
    public var statuses: [TaskStatus]
    public var priority: Int?
    public var createdBefore: Date?
    public var createdAfter: Date?
    public var taskIDs: [String]?

    public init(
        coreID: String? = nil, statuses: [TaskStatus] = [], priority: Int? = nil, createdBefore: Date? = nil,
        createdAfter: Date? = nil, taskIDs: [String]? = nil
    ) {
        self.coreID = coreID
        self.statuses = statuses
        self.priority = priority
        self.createdBefore = createdBefore
        self.createdAfter = createdAfter
        self.taskIDs = taskIDs
    }
}

/// One batch of a bulk action: the tasks changed, how many matched, and where the next batch
/// starts.
public struct BulkBatch: Sendable {
    public var changed: [StoredTransition]
    /// Tasks of the batch that matched the filter (changed or not).
    public var matched: Int
    /// The last task read, in storage order; `nil` when there were none (the action is done).
    public var cursor: Int64?

    public init(changed: [StoredTransition], matched: Int, cursor: Int64?) {
        self.changed = changed
        self.matched = matched
        self.cursor = cursor
    }
}

/// Filters and page of `GET /jobs/{task_id}/events`, oldest first.
public struct EventQuery: Sendable, Hashable {
    public var eventType: String?
    /// Only events strictly after this time.
    public var since: Date?
    public var limit: Int
    public var offset: Int

    public init(eventType: String? = nil, since: Date? = nil, limit: Int = 100, offset: Int = 0) {
        self.eventType = eventType
        self.since = since
        self.limit = limit
        self.offset = offset
    }
}

/// An `Idempotency-Key` presented with a dispatch.
public struct IdempotencyKey: Sendable, Hashable {
    public var userID: String
    public var key: String
    /// A digest of the normalised request; the same key with another fingerprint is a conflict.
    public var fingerprint: String
    /// Keys recorded before this time are forgotten (24 h before now).
    public var validAfter: Date

    public init(userID: String, key: String, fingerprint: String, validAfter: Date) {
        self.userID = userID
        self.key = key
        self.fingerprint = fingerprint
        self.validAfter = validAfter
    }
}

/// What a dispatch did.
public enum DispatchOutcome: Sendable, Hashable {
    /// A new task, with its stored `task.created` event and its standing right after the insert.
    case created(TaskRecord, [EventRecord], QueueStanding)
    /// The task an earlier dispatch with the same idempotency key created, and its standing now.
    case repeated(TaskRecord, QueueStanding)
}

/// A task stored by a batch dispatch, with its events and its standing right after its insert.
public struct DispatchedTask: Sendable, Hashable {
    public var task: TaskRecord
    public var events: [EventRecord]
    public var standing: QueueStanding

    public init(task: TaskRecord, events: [EventRecord], standing: QueueStanding) {
        self.task = task
        self.events = events
        self.standing = standing
    }
}

/// Where a task stands in its core's queue: what a dispatch answer needs.
public struct QueueStanding: Sendable, Hashable {
    /// 1-based place in the core's claim order; 0 when the task is not queued.
    public var position: Int
    public var load: CoreLoad

    public init(position: Int, load: CoreLoad) {
        self.position = position
        self.load = load
    }
}

/// What the server needs to estimate when a queued task starts.
public struct CoreLoad: Sendable, Hashable {
    /// Mean duration of the core's recent completed tasks, `nil` with no history.
    public var averageDuration: Double?
    /// Workers that claimed on the core recently or are running one of its tasks.
    public var activeWorkers: Int

    public init(averageDuration: Double?, activeWorkers: Int) {
        self.averageDuration = averageDuration
        self.activeWorkers = activeWorkers
    }
}

/// A task's change as stored: the new record and its events with their sequence numbers.
public typealias StoredTransition = (task: TaskRecord, events: [EventRecord])

/// The task half of the store. Every method that changes a task stores the new record and its
/// events in one transaction.
public protocol TaskStore: Sendable {
    /// Stores a new task and its events, unless `idempotency` names an earlier dispatch: then
    /// nothing is written and that task is returned. Throws `RESOURCE_CONFLICT` when the key was
    /// used with a different request. The task's standing is read in the same transaction
    /// (workers count as active when seen since `activeSince`), so a dispatch costs one trip
    /// to the store.
    func insertTask(_ transition: TaskTransition, idempotency: IdempotencyKey?, activeSince: Date) async throws
        -> DispatchOutcome

    /// Stores every task of a batch dispatch, in order, in one transaction: all of them or,
    /// when any insert fails, none. Each task's standing is read right after its own insert, as
    /// if the tasks had been dispatched one after another.
    func insertTasks(_ transitions: [TaskTransition], activeSince: Date) async throws -> [DispatchedTask]

    func task(id: String) async throws -> TaskRecord?

    func listTasks(_ query: TaskQuery) async throws -> (total: Int, tasks: [TaskRecord])

    /// The events of a task, oldest first, and how many match the filters.
    func taskEvents(taskID: String, _ query: EventQuery) async throws -> (total: Int, events: [EventRecord])

    /// Reads the task, applies `change` and stores the result, atomically. Throws 404
    /// `RESOURCE_NOT_FOUND` for an unknown task and whatever `change` throws.
    func modifyTask(id: String, _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition) async throws
        -> StoredTransition

    /// Takes up to `limit` ready tasks of `coreID` in claim order (priority descending, then
    /// oldest ready first), applies `change` to each and stores them, atomically, and records
    /// that `workerID` was seen on the core. Each task goes to exactly one caller. A paused
    /// core gives nothing; a core with `max_running` gives no more than brings its running
    /// tasks to the cap, counted over every node (claims of a capped core are serialised).
    func claimTasks(
        coreID: String, workerID: String, limit: Int, now: Date,
        _ change: @escaping @Sendable (TaskRecord) throws -> TaskTransition
    ) async throws -> ClaimResult

    /// Applies `change` to running tasks whose lease ran out or that passed their timeout by
    /// `now` (up to `limit` of them) and stores the results.
    func expireTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?) async throws
        -> [StoredTransition]

    /// The earliest lease expiry or timeout among running tasks, `nil` when none runs.
    func nextExpiry() async throws -> Date?

    /// Applies `change` to `scheduled` tasks whose `ready_at` is at or before `now` (up to
    /// `limit` of them, earliest first) and stores the results. With several nodes each task
    /// goes to one caller.
    func promoteTasks(now: Date, limit: Int, _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?)
        async throws -> [StoredTransition]

    /// The earliest `ready_at` among `scheduled` tasks, `nil` when none is scheduled.
    func nextPromotion() async throws -> Date?

    /// The 1-based place of a queued task in its core's claim order; 0 when it is not queued.
    func queuePosition(of task: TaskRecord) async throws -> Int

    /// Recent durations and active workers of a core; workers count when seen since `since`.
    func coreLoad(coreID: String, since: Date) async throws -> CoreLoad

    /// How many tasks have `status`.
    func countTasks(status: TaskStatus) async throws -> Int

    /// How many tasks match `filter`.
    func countTasks(matching filter: TaskFilter) async throws -> Int

    /// Up to `limit` tasks in `status` (a final one) whose last change is in `since..<until`,
    /// latest first, read through the `(status, updated_at)` index: what a node that just started
    /// counts into its task rollup for the last hour.
    func finishedTasks(status: TaskStatus, since: Date, until: Date, limit: Int) async throws -> [FinishedTask]

    /// Reads up to `limit` tasks matching `filter` that come after `cursor` in storage order
    /// (from the start when `nil`), applies `change` to each (`nil`: left as it is) and stores
    /// the results, in one transaction; a bulk action is a run of these, so no transaction
    /// holds the write lock for long.
    func modifyTasks(
        matching filter: TaskFilter, after cursor: Int64?, limit: Int,
        _ change: @escaping @Sendable (TaskRecord) -> TaskTransition?
    ) async throws -> BulkBatch

    /// Queued and scheduled tasks per core (cores with neither are left out).
    ///
    /// Read from the per-core counts and, for the oldest queued task, one index seek per core
    /// and priority (a queued task's `ready_at` is never before its creation): the monitor asks
    /// every few seconds, and counting a 100,000-task queue row by row held dispatches up by
    /// 100 ms on a two-core machine.
    func queueSummary() async throws -> [CoreQueueSummary]
}

/// The event log, read by streams.
public protocol EventStore: Sendable {
    /// Stores events that belong to no task change (locks, webhooks, alerts).
    func appendEvents(_ drafts: [EventDraft], taskID: String?, coreID: String?) async throws -> [EventRecord]

    /// Events with `after < sequence <= through` matching `filter`, in sequence order, at most
    /// `limit` of them.
    func events(after: Int64, through: Int64, matching filter: EventFilter, limit: Int) async throws -> [EventRecord]

    /// The highest sequence stored, 0 when there are no events.
    func lastEventSequence() async throws -> Int64

    /// A mark of the transactions open now. PostgreSQL hands out an event's sequence before
    /// its transaction commits, so a missing sequence may still appear; once every transaction
    /// open at the mark has ended (``hasSettled(_:)``), a sequence allocated before the mark
    /// that is not stored never will be. SQLite commits in sequence order: always settled.
    func eventFence() async throws -> EventFence

    /// Whether every transaction open at `fence` has ended (committed or rolled back).
    func hasSettled(_ fence: EventFence) async throws -> Bool
}

/// See ``EventStore/eventFence()``: on PostgreSQL the `xmax` of a snapshot.
public struct EventFence: Sendable, Hashable {
    public var value: Int64

    public init(_ value: Int64) {
        self.value = value
    }
}

/// A finished task as the task rollup counts it.
public struct FinishedTask: Sendable, Equatable {
    public var coreID: String
    public var status: TaskStatus
    public var finishedAt: Date
    public var duration: Double?

    public init(coreID: String, status: TaskStatus, finishedAt: Date, duration: Double?) {
        self.coreID = coreID
        self.status = status
        self.finishedAt = finishedAt
        self.duration = duration
    }
}
