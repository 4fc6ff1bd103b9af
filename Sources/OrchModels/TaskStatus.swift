/// Where a task is in its life.
///
/// `scheduled` → `queued` → `running` → `completed` | `failed` | `cancelled`. A task waits as
/// `scheduled` until its `run_at` (a delayed dispatch, or a retry backing off), then joins its
/// core's queue. `completed`, `failed` and `cancelled` are terminal, except that a `stay` task
/// goes back to the queue after completing or failing, and an operator can retry a failed or
/// cancelled task.
public enum TaskStatus: String, Codable, Sendable, CaseIterable, Hashable {
    case scheduled
    case queued
    case running
    case completed
    case failed
    case cancelled

    /// Whether nothing can happen to the task any more (for a non-`stay` task).
    public var isTerminal: Bool {
        switch self {
        case .scheduled, .queued, .running: false
        case .completed, .failed, .cancelled: true
        }
    }

    /// The statuses, as an error message lists them.
    public static let names = allCases.map(\.rawValue).joined(separator: ", ")

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let status = TaskStatus(rawValue: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of \(Self.names)")
        }
        self = status
    }
}
