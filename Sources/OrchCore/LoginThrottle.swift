/// Slows down and then refuses repeated failed logins: the policy. The failures themselves are
/// counted per key by the store (``forgetAfter`` seconds after the last one they start again),
/// so that every node of a database counts the same ones and a restart forgets nothing. From
/// the `slowAfter`-th failure each further attempt is held for a growing delay; from the
/// `refuseAfter`-th, attempts on a key that may lock (``Key/locks``) are refused (429) until a
/// lockout of `firstLockout` * 2^(failures - refuseAfter) seconds (default 1 s, doubling)
/// since the last failure has passed, never more than `maximumLockout`. Keys that do not lock only slow attempts down (by at most
/// ``maximumDelay``). A successful login resets the counts of its keys.
///
/// The server locks the pair (username, client address) and only slows the username and the
/// address alone (``keys(username:address:)``): whoever guesses at a password locks out
/// themselves, never the account's owner elsewhere.
public struct LoginThrottle: Sendable {
    /// What to do with a login attempt.
    public enum Verdict: Sendable, Hashable {
        /// Go ahead, after holding the answer this many seconds.
        case proceed(delay: Double)
        /// Refuse with 429; retry after this many seconds.
        case refuse(retryAfter: Double)
    }

    /// The failures recorded under one key.
    public struct Record: Sendable, Hashable {
        public var failures: Int
        /// When the last one was, seconds on the clock `now` is given in.
        public var lastFailure: Double

        public init(failures: Int, lastFailure: Double) {
            self.failures = failures
            self.lastFailure = lastFailure
        }
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
    /// The lockout at the `refuseAfter`-th failure, seconds; each further failure doubles it.
    public let firstLockout: Double

    public init(
        slowAfter: Int = 3, refuseAfter: Int = 8, maximumLockout: Double = 900, forgetAfter: Double = 900,
        firstLockout: Double = 1
    ) {
        self.slowAfter = slowAfter
        self.refuseAfter = refuseAfter
        self.maximumLockout = maximumLockout
        self.forgetAfter = forgetAfter
        self.firstLockout = firstLockout
    }

    /// The verdict for an attempt on `keys` at `now` (seconds) given the failures recorded by
    /// key name: the strictest over the keys.
    public func verdict(keys: [Key], records: [String: Record], now: Double) -> Verdict {
        var delay = 0.0
        var retryAfter = 0.0
        for key in keys {
            guard let record = records[key.name], now - record.lastFailure < forgetAfter else { continue }
            if record.failures >= refuseAfter && !key.locks {
                delay = max(delay, Self.maximumDelay)
            } else if record.failures >= refuseAfter {
                let lockout = min(maximumLockout, firstLockout * Double(1 << min(30, record.failures - refuseAfter)))
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
