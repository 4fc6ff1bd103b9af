import DequeModule
import Synchronization

/// One async mutual-exclusion gate per key, entered in arrival order. Unlike an actor, a gate
/// stays closed across the `await`s inside it, so a read-decide-write sequence on one key cannot
/// interleave with another on the same key.
final class KeyedGates: Sendable {
    private struct Gate {
        var waiting: Deque<CheckedContinuation<Void, Never>> = []
    }

    /// Keys whose gate is taken; absent means open.
    private let gates = Mutex<[String: Gate]>([:])

    /// Runs `body` with the gate of `key` held.
    func withGate<T: Sendable>(_ key: String, _ body: () async throws -> T) async throws -> T {
        await enter(key)
        defer { leave(key) }
        return try await body()
    }

    private func enter(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let entered = gates.withLock { gates -> Bool in
                if gates[key] == nil {
                    gates[key] = Gate()
                    return true
                }
                gates[key]!.waiting.append(continuation)
                return false
            }
            if entered { continuation.resume() }
        }
    }

    private func leave(_ key: String) {
        let next = gates.withLock { gates -> CheckedContinuation<Void, Never>? in
            guard var gate = gates[key] else { return nil }
            if let next = gate.waiting.popFirst() {
                gates[key] = gate
                return next
            }
            gates[key] = nil
            return nil
        }
        next?.resume()
    }
}
