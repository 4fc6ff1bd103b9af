import Foundation

/// How long a task waits before each retry: the n-th retry waits
/// `min(initial_interval * backoff_coefficient^(n-1), maximum_interval)` seconds, with ±10 %
/// jitter (``delay(beforeRetry:jitter:)``).
public struct RetryPolicy: Codable, Sendable, Hashable {
    /// Seconds before the first retry. Default 1.
    public var initialInterval: Double
    /// What each further retry multiplies the wait by. Default 2.
    public var backoffCoefficient: Double
    /// The longest wait, in seconds. Default 300.
    public var maximumInterval: Double

    public static let standard = RetryPolicy()
    /// How far jitter moves a wait either way, as a fraction of it.
    public static let jitterFraction = 0.1

    public init(initialInterval: Double = 1, backoffCoefficient: Double = 2, maximumInterval: Double = 300) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
    }

    /// Seconds to wait before retry number `retry` (1 for the first), `jitter` in -1...1 moving
    /// it by up to ``jitterFraction`` of itself either way.
    public func delay(beforeRetry retry: Int, jitter: Double) -> Double {
        let exponent = Double(max(0, retry - 1))
        let base = min(max(maximumInterval, initialInterval), initialInterval * pow(backoffCoefficient, exponent))
        return max(0, base * (1 + Self.jitterFraction * min(1, max(-1, jitter))))
    }

    enum CodingKeys: String, CodingKey {
        case initialInterval = "initial_interval"
        case backoffCoefficient = "backoff_coefficient"
        case maximumInterval = "maximum_interval"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        initialInterval = try container.decodeIfPresent(Double.self, forKey: .initialInterval) ?? 1
        backoffCoefficient = try container.decodeIfPresent(Double.self, forKey: .backoffCoefficient) ?? 2
        maximumInterval = try container.decodeIfPresent(Double.self, forKey: .maximumInterval) ?? 300
    }
}
