import Foundation
import OrchCore
import Synchronization

/// The in-process fan-out of stored events. Every writer publishes the events it stored, after
/// their transaction committed; listeners must return quickly and never block (they hand the
/// events on to their own buffers or wake waiters).
public final class EventBus: Sendable {
    public typealias Listener = @Sendable ([EventRecord]) -> Void

    private let listeners = Mutex<[UUID: Listener]>([:])

    public init() {}

    /// Registers `listener`; keep the returned id to remove it.
    @discardableResult
    public func subscribe(_ listener: @escaping Listener) -> UUID {
        let id = UUID()
        listeners.withLock { $0[id] = listener }
        return id
    }

    public func unsubscribe(_ id: UUID) {
        _ = listeners.withLock { $0.removeValue(forKey: id) }
    }

    /// Hands committed events to every listener.
    public func publish(_ events: [EventRecord]) {
        guard !events.isEmpty else { return }
        let current = listeners.withLock { Array($0.values) }
        for listener in current { listener(events) }
    }
}
