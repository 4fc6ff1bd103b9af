import Foundation
import OrchCore
import Synchronization

/// One live event stream's side of the bus: a bounded buffer of matching events that its
/// connection drains.
///
/// The buffer holds at most `capacity` undelivered items. A subscriber that falls that far
/// behind is closed (`overflow`) and its connection cut, so it never slows the writers or the
/// other subscribers; it resumes with `Last-Event-ID` and loses nothing.
public final class EventSubscription: Sendable {
    /// What the connection receives.
    public enum Item: Sendable {
        case event(EventRecord)
        case heartbeat
        case closed(CloseReason)
    }

    /// Why a stream ended from the server's side.
    public enum CloseReason: String, Sendable {
        case overflow, revoked, expired, shutdown, disconnected
    }

    public let id = UUID()
    public let filter: EventFilter
    /// The user the stream belongs to, for revocation.
    public let userID: String?
    /// The API token the stream was opened with, for revocation.
    public let apiTokenID: String?
    /// When the stream's token expires.
    public let expiresAt: Date?
    public let capacity: Int
    public let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let buffered = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)
    /// Uptime in milliseconds of the last item offered, for heartbeat scheduling.
    private let lastActivity: Atomic<Int64>
    /// Called once when the buffer overflows: cuts the connection even if its writes are stuck.
    private let onOverflow: @Sendable () -> Void

    init(
        filter: EventFilter, userID: String?, apiTokenID: String? = nil, expiresAt: Date?, capacity: Int,
        onOverflow: @escaping @Sendable () -> Void
    ) {
        self.filter = filter
        self.userID = userID
        self.apiTokenID = apiTokenID
        self.expiresAt = expiresAt
        self.capacity = capacity
        self.onOverflow = onOverflow
        (stream, continuation) = AsyncStream.makeStream(of: Item.self)
        lastActivity = Atomic(Self.uptimeMillis())
    }

    /// Offers an event; returns false when this subscription is (now) closed.
    func offer(_ event: EventRecord) -> Bool {
        guard !isClosed.load(ordering: .acquiring) else { return false }
        guard filter.matches(event) else { return true }
        return enqueue(.event(event))
    }

    /// Offers a heartbeat when nothing was sent for `interval` milliseconds.
    func heartbeatIfIdle(interval: Int64) {
        guard !isClosed.load(ordering: .acquiring), Self.uptimeMillis() - lastActivity.load(ordering: .relaxed) >= interval
        else { return }
        _ = enqueue(.heartbeat)
    }

    private func enqueue(_ item: Item) -> Bool {
        let count = buffered.add(1, ordering: .relaxed).newValue
        if count > capacity {
            if close(.overflow) { onOverflow() }
            return false
        }
        lastActivity.store(Self.uptimeMillis(), ordering: .relaxed)
        continuation.yield(item)
        return true
    }

    /// The connection took one item off the buffer.
    func consumed() {
        buffered.subtract(1, ordering: .relaxed)
    }

    /// Ends the stream after what is buffered; returns whether this call closed it.
    @discardableResult
    func close(_ reason: CloseReason) -> Bool {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        continuation.yield(.closed(reason))
        continuation.finish()
        return true
    }

    static func uptimeMillis() -> Int64 {
        let components = ContinuousClock.now.duration(to: ContinuousClock.Instant.zeroReference).components
        return -(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }
}

extension ContinuousClock.Instant {
    /// A fixed instant to measure uptime from.
    static let zeroReference = ContinuousClock.now
}
