import Synchronization

/// Request rate limiting by key with the generic cell rate algorithm (GCRA).
///
/// Each key may make `limit` requests per `window`, spread out: one request is "worth"
/// `window / limit`, and a key may run ahead of that pace by at most one window's worth. Unlike
/// fixed windows there is no double burst at a window's edge. Memory is bounded: at most
/// `capacity` keys are tracked; keys whose allowance is fully restored carry no state and are
/// dropped first, and past the cap the keys closest to restored are dropped (which only ever
/// errs in the client's favour).
public final class RateLimiter: Sendable {
    /// The answer for one request.
    public struct Decision: Sendable, Hashable {
        public var allowed: Bool
        /// The limit per window.
        public var limit: Int
        /// Requests still allowed right now.
        public var remaining: Int
        /// Seconds until the allowance is fully restored.
        public var resetAfter: Double
        /// Seconds to wait before retrying, when not allowed.
        public var retryAfter: Double
    }

    /// The window in seconds (60 for per-minute limits).
    public let window: Double
    /// The most keys tracked at once.
    public let capacity: Int
    /// Theoretical arrival time of each key's next request, in seconds on `now`'s clock.
    private let arrivals = Mutex<[String: Double]>([:])

    public init(window: Double = 60, capacity: Int = 100_000) {
        self.window = window
        self.capacity = capacity
    }

    /// Counts a request of `key` against `limit` per window at time `now` (seconds on any
    /// monotonic clock). A limit of 0 or less means unlimited.
    public func check(key: String, limit: Int, now: Double) -> Decision {
        guard limit > 0 else { return Decision(allowed: true, limit: 0, remaining: 0, resetAfter: 0, retryAfter: 0) }
        let interval = window / Double(limit)
        let tolerance = window - interval
        return arrivals.withLock { arrivals in
            let arrival = max(arrivals[key] ?? now, now)
            if arrival - tolerance > now {
                return Decision(
                    allowed: false, limit: limit, remaining: 0, resetAfter: arrival - now,
                    retryAfter: arrival - tolerance - now)
            }
            let next = arrival + interval
            if arrivals[key] == nil && arrivals.count >= capacity { evict(&arrivals, now: now) }
            arrivals[key] = next
            // Further requests allowed now: those whose arrival stays within the tolerance.
            let remaining = Int(((tolerance - (next - now)) / interval).rounded(.down)) + 1
            return Decision(
                allowed: true, limit: limit, remaining: min(limit - 1, max(0, remaining)), resetAfter: next - now,
                retryAfter: 0)
        }
    }

    /// Keys tracked now.
    public var trackedKeys: Int { arrivals.withLock { $0.count } }

    private func evict(_ arrivals: inout [String: Double], now: Double) {
        arrivals = arrivals.filter { $0.value > now }
        if arrivals.count >= capacity {
            let keep = arrivals.sorted { $0.value > $1.value }.prefix(capacity / 2)
            arrivals = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }
}
