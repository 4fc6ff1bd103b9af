import Foundation
import OrchCore
import OrchModels

/// A core's settings (`PATCH /cores/{core_id}`); a core never changed has the defaults.
public struct CoreSettings: Sendable, Hashable {
    public var coreID: String
    /// Claims get nothing while paused; dispatches are still taken.
    public var paused: Bool
    /// The most of the core's tasks claims may have running at once, over every node.
    public var maxRunning: Int?

    public init(coreID: String, paused: Bool = false, maxRunning: Int? = nil) {
        self.coreID = coreID
        self.paused = paused
        self.maxRunning = maxRunning
    }
}

/// A core as `GET /cores` lists it: counts, settings, workers, the oldest queued task.
public struct CoreSummary: Sendable, Hashable {
    public var settings: CoreSettings
    public var queued: Int
    public var scheduled: Int
    public var running: Int
    /// Workers seen claiming since the `activeSince` asked for, or running one of its tasks.
    public var activeWorkers: Int
    /// When the longest-waiting queued task became claimable.
    public var oldestQueuedAt: Date?

    public init(
        settings: CoreSettings, queued: Int, scheduled: Int, running: Int, activeWorkers: Int, oldestQueuedAt: Date?
    ) {
        self.settings = settings
        self.queued = queued
        self.scheduled = scheduled
        self.running = running
        self.activeWorkers = activeWorkers
        self.oldestQueuedAt = oldestQueuedAt
    }
}

/// Why a claim got nothing although the core may have queued tasks.
public enum ClaimBlock: Sendable, Hashable {
    /// The core is paused.
    case paused
    /// The core runs `max_running` tasks already.
    case atCapacity
}

/// What a claim took: the tasks, or why it could take none.
public struct ClaimResult: Sendable {
    public var tasks: [StoredTransition]
    /// Set when the core's settings, not an empty queue, kept the claim from taking anything.
    public var blocked: ClaimBlock?

    public init(tasks: [StoredTransition], blocked: ClaimBlock? = nil) {
        self.tasks = tasks
        self.blocked = blocked
    }
}

/// The cores: their settings and what they hold.
public protocol CoreStore: Sendable {
    /// Every core that has tasks (in any status, ever), settings, or workers seen since
    /// `activeSince`, ordered by id; only `coreID` when given (`[]` when it is unknown).
    func coreSummaries(coreID: String?, activeSince: Date) async throws -> [CoreSummary]

    /// Applies `change` to the core's settings (the defaults when it has none) and stores them
    /// with the event `describe` makes of the result, in one transaction.
    func updateCore(
        id: String, _ change: @escaping @Sendable (CoreSettings) throws -> CoreSettings,
        describe: @escaping @Sendable (CoreSettings) -> EventDraft
    ) async throws -> (settings: CoreSettings, event: EventRecord)
}
