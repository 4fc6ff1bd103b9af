import Foundation
import OrchModels

/// How long finished tasks and free-standing events are kept (`ORCH_RETENTION`).
///
/// `completed=7d,failed=30d,cancelled=7d,events=30d` by default; each a duration (`90s`,
/// `15m`, `12h`, `7d`) counted from the task's last change (when it finished) or the event's
/// time, `0` to keep forever. Names not given keep their default. `events` is for events that
/// belong to no task (alerts, lock and webhook events); a task's events go with the task.
public struct RetentionPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Seconds each final status is kept; 0 keeps forever.
    public var tasks: [TaskStatus: Int] = [.completed: 7 * 86_400, .failed: 30 * 86_400, .cancelled: 7 * 86_400]
    /// Seconds an event that belongs to no task is kept; 0 keeps forever.
    public var events = 30 * 86_400

    public init() {}

    /// Parses `name=duration` pairs over the defaults; nil with the reason for anything else.
    public init(parsing text: String) throws(RetentionError) {
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw RetentionError("'\(item)' is not name=duration") }
            guard let seconds = Self.seconds(parts[1]) else {
                throw RetentionError("'\(parts[1])' is not a duration such as 90s, 15m, 12h, 7d or 0")
            }
            switch parts[0] {
            case "completed": tasks[.completed] = seconds
            case "failed": tasks[.failed] = seconds
            case "cancelled": tasks[.cancelled] = seconds
            case "events": events = seconds
            default: throw RetentionError("unknown name '\(parts[0])' (completed, failed, cancelled, events)")
            }
        }
    }

    /// `0`, or a whole number with one unit of s, m, h or d.
    static func seconds(_ text: String) -> Int? {
        if text == "0" { return 0 }
        guard let unit = text.last, let number = Int(text.dropLast()), number > 0, number <= 100_000 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3_600
        case "d": return number * 86_400
        default: return nil
        }
    }

    public var description: String {
        func text(_ seconds: Int) -> String {
            if seconds == 0 { return "0" }
            for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] where seconds % size == 0 { return "\(seconds / size)\(unit)" }
            return "\(seconds)s"
        }
        return [TaskStatus.completed, .failed, .cancelled].map { "\($0.rawValue)=\(text(tasks[$0] ?? 0))" }.joined(separator: ",")
            + ",events=\(text(events))"
    }
}

public struct RetentionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
