import Synchronization

/// Records kept in memory by key in front of the store, for reads that happen on every request
/// (the user behind a token).
///
/// The store stays the truth: every write to a record goes through ``invalidate(_:)`` after it
/// commits, and a read that raced with a write does not put its (possibly older) record back,
/// because ``fill(_:_:read:)`` only keeps what it read when no invalidation happened meanwhile.
/// At most `capacity` records are kept; past that the cache starts empty again. With a
/// `lifetime`, a record is read again once it is that old: where other processes write the
/// same records (several nodes on PostgreSQL) and tell this one through notices, the lifetime
/// bounds how long a lost notice can leave a stale record.
final class RecordCache<Value: Sendable>: Sendable {
    private struct State {
        var records: [String: (value: Value, since: ContinuousClock.Instant)] = [:]
        /// Bumped by every invalidation.
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    private let capacity: Int
    private let lifetime: Duration?

    init(capacity: Int = 10_000, lifetime: Duration? = nil) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// The cached record for `key`, else what `read` returns (kept when nothing changed meanwhile).
    func fill(_ key: String, read: () async throws -> Value?) async rethrows -> Value? {
        let now = ContinuousClock.now
        let (cached, generation) = state.withLock { ($0.records[key], $0.generation) }
        if let cached, lifetime.map({ now - cached.since < $0 }) ?? true { return cached.value }
        let value = try await read()
        if let value {
            state.withLock { state in
                guard state.generation == generation else { return }
                if state.records.count >= capacity { state.records.removeAll(keepingCapacity: true) }
                state.records[key] = (value, now)
            }
        }
        return value
    }

    /// Forgets every record (after a time in which notices may have been missed).
    func invalidateAll() {
        state.withLock { state in
            state.records.removeAll(keepingCapacity: true)
            state.generation &+= 1
        }
    }

    /// Forgets `key`'s record; call after every committed write to it.
    func invalidate(_ key: String) {
        state.withLock { state in
            state.records[key] = nil
            state.generation &+= 1
        }
    }
}
