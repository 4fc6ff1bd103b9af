import Foundation
import Logging
import OrchCore
import OrchModels
import OrchStore
import Synchronization

/// Tasks finished per minute over the last hour, by core: how many completed, how many failed
/// for good, and a histogram of their run times, for the dashboard's overview
/// (`GET /stats/tasks`) without reading the task table on each view.
///
/// It is kept in memory from the event bus, which releases every event of every node in order,
/// so each node holds the same figures. A node that starts fills it once from the tasks that
/// finished in the hour before it started (``warm(from:logger:)``, through the `(status,
/// updated_at)` index, at most ``warmLimit`` tasks per status); from then on it counts
/// `task.completed` and `task.failed` events as they are released. (A resident `stay` task goes
/// back to `queued` when it finishes, so its completions from before the start are not found.)
///
/// The 95th percentile of a minute (or the hour) is the upper bound of the histogram bucket
/// that holds it, or the longest run time when that is the open-ended last bucket.
final class TaskRollup: Sendable {
    /// Run-time bucket bounds, seconds.
    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]
    static let windowMinutes = 60
    static let warmLimit = 200_000

    struct Minute: Sendable, Equatable {
        var completed = 0
        var failed = 0
        var buckets = [Int](repeating: 0, count: TaskRollup.bounds.count + 1)
        var longest = 0.0

        mutating func add(status: TaskStatus, duration: Double?) {
            if status == .completed { completed += 1 } else { failed += 1 }
            guard let duration, duration.isFinite, duration >= 0 else { return }
            let index = TaskRollup.bounds.firstIndex { duration <= $0 } ?? TaskRollup.bounds.count
            buckets[index] += 1
            longest = max(longest, duration)
        }

        mutating func merge(_ other: Minute) {
            completed += other.completed
            failed += other.failed
            for index in buckets.indices { buckets[index] += other.buckets[index] }
            longest = max(longest, other.longest)
        }

        /// See the type's note; nil without run times.
        var p95: Double? {
            let total = buckets.reduce(0, +)
            guard total > 0 else { return nil }
            let rank = Int((Double(total) * 0.95).rounded(.up))
            var seen = 0
            for (index, count) in buckets.enumerated() {
                seen += count
                if seen >= rank { return index < TaskRollup.bounds.count ? min(TaskRollup.bounds[index], longest) : longest }
            }
            return longest
        }
    }

    private struct Held {
        /// Minute (seconds since 1970 / 60) → core → figures.
        var figures: [Int64: [String: Minute]] = [:]
        var newest = Int64.min
    }

    private let minutes = Mutex(Held())
    /// Events before this instant are the warm-up's to count.
    let countsFrom: Date

    init(countingFrom start: Date = .distantPast) {
        countsFrom = start
    }

    static func minute(of date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 60).rounded(.down)) }

    func add(coreID: String, status: TaskStatus, duration: Double?, at date: Date) {
        let minute = Self.minute(of: date)
        minutes.withLock { state in
            // The window ends at the newest minute seen; what falls out of it is forgotten.
            state.newest = max(state.newest, minute)
            let oldest = state.newest - Int64(Self.windowMinutes) - 1
            guard minute >= oldest else { return }
            state.figures[minute, default: [:]][coreID, default: Minute()].add(status: status, duration: duration)
            if state.figures.count > Self.windowMinutes + 2 {
                state.figures = state.figures.filter { $0.key >= oldest }
            }
        }
    }

    /// The bus listener: counts final outcomes.
    func record(_ events: [EventRecord]) {
        for event in events where event.type == .taskCompleted || event.type == .taskFailed {
            guard let coreID = event.coreID, event.timestamp >= countsFrom else { continue }
            add(
                coreID: coreID, status: event.type == .taskCompleted ? .completed : .failed,
                duration: event.data["duration"]?.doubleValue, at: event.timestamp)
        }
    }

    /// Counts the tasks that finished in the hour before ``countsFrom``; events from then on
    /// are counted as they are released.
    func warm(from store: any Store, logger: Logger) async {
        let now = countsFrom
        let since = now.addingTimeInterval(-Double(Self.windowMinutes * 60))
        do {
            for status in [TaskStatus.completed, .failed] {
                for task in try await store.finishedTasks(status: status, since: since, until: now, limit: Self.warmLimit) {
                    add(coreID: task.coreID, status: status, duration: task.duration, at: task.finishedAt)
                }
            }
        } catch {
            logger.warning("task rollup: the last hour could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// The last hour ending with the minute of `now`, oldest minute first, for one core or all.
    func snapshot(coreID: String?, now: Date) -> TaskStats {
        let last = Self.minute(of: now)
        let held = minutes.withLock { $0.figures }
        var total = Minute()
        var series: [TaskStats.MinuteFigures] = []
        for minute in (last - Int64(Self.windowMinutes) + 1)...last {
            var figures = Minute()
            for (core, counted) in held[minute] ?? [:] where coreID == nil || core == coreID {
                figures.merge(counted)
            }
            total.merge(figures)
            series.append(
                TaskStats.MinuteFigures(
                    minute: Date(timeIntervalSince1970: Double(minute * 60)), completed: figures.completed,
                    failed: figures.failed, p95Seconds: figures.p95))
        }
        return TaskStats(
            coreID: coreID, windowMinutes: Self.windowMinutes, completed: total.completed, failed: total.failed,
            p95Seconds: total.p95, minutes: series)
    }
}
