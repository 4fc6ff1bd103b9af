import Synchronization

/// Slows down and then refuses repeated failed logins.
///
/// Failures are counted per key and forgotten `forgetAfter` seconds after the last one. From
/// the `slowAfter`-th failure each further attempt is held for a growing delay; from the
/// `refuseAfter`-th, attempts on a key that may lock (``Key/locks``) are refused (429) until a
/// lockout of 2^(failures - refuseAfter) seconds since the last failure has passed, never more
/// than `maximumLockout`. Keys that do not lock only slow attempts down (by at most
/// ``maximumDelay``). A successful login resets the counts of its keys. At most `capacity`
/// keys are tracked.
///
/// The server locks the pair (username, client address) and only slows the username and the
/// address alone (``keys(username:address:)``): whoever guesses at a password locks out
/// themselves, never the account's owner elsewhere.
public final class LoginThrottle: Sendable {
    /// What to do with a login attempt.
    public enum Verdict: Sendable, Hashable {
        /// Go ahead, after holding the answer this many seconds.
        case proceed(delay: Double)
        /// Refuse with 429; retry after this many seconds.
        case refuse(retryAfter: Double)
    }

    struct Record {
        var failures: Int
        var lastFailure: Double
    }

    /// What failures are counted under.
    public struct Key: Sendable, Hashable {
        public var name: String
        /// Whether enough failures refuse further attempts (otherwise they are only slowed).
        public var locks: Bool

        public init(_ name: String, locks: Bool) {
            self.name = name
            self.locks = locks
        }
    }

    /// The keys of a login attempt for `username` from `address`: the pair locks, the username
    /// and the address alone slow down.
    public static func keys(username: String, address: String) -> [Key] {
        let user = username.lowercased()
        return [
            Key("pair:\(user)|\(address)", locks: true), Key("user:\(user)", locks: false),
            Key("address:\(address)", locks: false),
        ]
    }

    /// The longest an attempt is held before it is answered, seconds.
    public static let maximumDelay = 2.0

    public let slowAfter: Int
    public let refuseAfter: Int
    public let maximumLockout: Double
    public let forgetAfter: Double
    public let capacity: Int
    private let records = Mutex<[String: Record]>([:])

    public init(
        slowAfter: Int = 3, refuseAfter: Int = 8, maximumLockout: Double = 900, forgetAfter: Double = 900,
        capacity: Int = 100_000
    ) {
        self.slowAfter = slowAfter
        self.refuseAfter = refuseAfter
        self.maximumLockout = maximumLockout
        self.forgetAfter = forgetAfter
        self.capacity = capacity
    }

    /// The verdict for an attempt on `keys` at `now` (seconds, monotonic): the strictest over
    /// the keys.
    public func verdict(keys: [Key], now: Double) -> Verdict {
        records.withLock { records in
            var delay = 0.0
            var retryAfter = 0.0
            for key in keys {
                guard let record = records[key.name], now - record.lastFailure < forgetAfter else { continue }
                if record.failures >= refuseAfter && !key.locks {
                    delay = max(delay, Self.maximumDelay)
                } else if record.failures >= refuseAfter {
                    let lockout = min(maximumLockout, Double(1 << min(30, record.failures - refuseAfter)))
                    let left = record.lastFailure + lockout - now
                    if left > 0 {
                        retryAfter = max(retryAfter, left)
                    } else {
                        delay = max(delay, Self.maximumDelay)
                    }
                } else if record.failures >= slowAfter {
                    delay = max(delay, min(Self.maximumDelay, 0.25 * Double(record.failures - slowAfter + 1)))
                }
            }
            return retryAfter > 0 ? .refuse(retryAfter: retryAfter) : .proceed(delay: delay)
        }
    }

    /// Counts a failed attempt on every key.
    public func recordFailure(keys: [Key], now: Double) {
        records.withLock { records in
            if records.count + keys.count > capacity {
                records = records.filter { now - $0.value.lastFailure < forgetAfter }
                if records.count + keys.count > capacity { records.removeAll() }
            }
            for key in keys {
                var record = records[key.name] ?? Record(failures: 0, lastFailure: now)
                if now - record.lastFailure >= forgetAfter { record.failures = 0 }
                record.failures += 1
                record.lastFailure = now
                records[key.name] = record
            }
        }
    }

    /// Forgets the failures of every key (after a successful login).
    public func recordSuccess(keys: [Key]) {
        records.withLock { records in
            for key in keys { records.removeValue(forKey: key.name) }
        }
    }

    /// Keys tracked now.
    public var trackedKeys: Int { records.withLock { $0.count } }
}
