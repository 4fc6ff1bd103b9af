/// Where a task is in its life.
///
/// `queued` → `running` → `completed` | `failed` | `cancelled`. The last three are terminal,
/// except that a `stay` task goes back to `queued` after completing or failing.
public enum TaskStatus: String, Codable, Sendable, CaseIterable, Hashable {
    case queued
    case running
    case completed
    case failed
    case cancelled

    /// Whether nothing can happen to the task any more (for a non-`stay` task).
    public var isTerminal: Bool {
        switch self {
        case .queued, .running: false
        case .completed, .failed, .cancelled: true
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let status = TaskStatus(rawValue: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "must be one of queued, running, completed, failed, cancelled")
        }
        self = status
    }
}
