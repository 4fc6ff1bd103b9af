import DequeModule
import Foundation
import NIOCore
import OrchCore
import Synchronization

/// One live event stream's side of the bus: a bounded buffer of matching event frames that its
/// connection drains.
///
/// The buffer holds at most `capacity` undelivered items and `byteCapacity` bytes of frames. A
/// subscriber that falls that far behind is closed (`overflow`) and its connection cut, so it
/// never slows the writers or the other subscribers; it resumes with `Last-Event-ID` and loses
/// nothing. Frames are encoded once per event and shared by every stream that carries it
/// (``SharedFrame``); a frame counts against ``StreamMemory`` once while any stream holds it,
/// and beyond that bound the slowest streams are cut first.
public final class EventSubscription: Sendable {
    /// What the connection receives.
    public enum Item: Sendable {
        /// An event's encoded `id:`/`data:` frame.
        case frame(SharedFrame)
        case heartbeat
        case closed(CloseReason)
    }

    /// Why a stream ended from the server's side.
    public enum CloseReason: String, Sendable {
        case overflow, revoked, expired, shutdown, disconnected
    }

    private struct Buffer {
        var items = 0
        var bytes = 0
        var closed = false
        /// The frames offered and not yet written, oldest first (the stream delivers in order).
        var frames: Deque<SharedFrame> = []
    }

    public let id = UUID()
    public let filter: EventFilter
    /// The user the stream belongs to, for revocation.
    public let userID: String?
    /// The API token the stream was opened with, for revocation.
    public let apiTokenID: String?
    /// The session generation of the login token the stream was opened with (`nil`: an API
    /// token): once the user's generation moves on, the stream ends.
    public let sessionGeneration: Int?
    /// When the stream's token expires.
    public let expiresAt: Date?
    public let capacity: Int
    public let byteCapacity: Int
    public let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let buffer = Mutex(Buffer())
    private let memory: StreamMemory
    /// Uptime in milliseconds of the last item offered, for heartbeat scheduling.
    private let lastActivity: Atomic<Int64>
    /// Called once when the buffer overflows: cuts the connection even if its writes are stuck.
    private let onOverflow: @Sendable () -> Void

    init(
        filter: EventFilter, userID: String?, apiTokenID: String? = nil, sessionGeneration: Int? = nil, expiresAt: Date?,
        capacity: Int, byteCapacity: Int = .max, memory: StreamMemory = StreamMemory(),
        onOverflow: @escaping @Sendable () -> Void
    ) {
        self.filter = filter
        self.userID = userID
        self.apiTokenID = apiTokenID
        self.sessionGeneration = sessionGeneration
        self.expiresAt = expiresAt
        self.capacity = capacity
        self.byteCapacity = byteCapacity
        self.memory = memory
        self.onOverflow = onOverflow
        (stream, continuation) = AsyncStream.makeStream(of: Item.self)
        lastActivity = Atomic(Self.uptimeMillis())
    }

    /// Offers an event whose frame `frame` makes (called only when the filter matches);
    /// returns false when this subscription is (now) closed.
    func offer(frame: SharedFrame) -> Bool {
        enqueue(.frame(frame), bytes: frame.bytes.readableBytes)
    }

    /// Offers a heartbeat when nothing was sent for `interval` milliseconds.
    func heartbeatIfIdle(interval: Int64) {
        guard !isClosed, Self.uptimeMillis() - lastActivity.load(ordering: .relaxed) >= interval else { return }
        _ = enqueue(.heartbeat, bytes: 0)
    }

    private func enqueue(_ item: Item, bytes: Int) -> Bool {
        let accepted = buffer.withLock { buffer -> Bool in
            guard !buffer.closed else { return false }
            guard buffer.items < capacity, buffer.bytes + bytes <= byteCapacity else { return false }
            buffer.items += 1
            buffer.bytes += bytes
            if case .frame(let frame) = item {
                buffer.frames.append(frame)
                frame.retain(in: memory)
            }
            return true
        }
        guard accepted else {
            if close(.overflow) { onOverflow() }
            return false
        }
        lastActivity.store(Self.uptimeMillis(), ordering: .relaxed)
        continuation.yield(item)
        return true
    }

    /// The connection wrote one item (a frame, or with `frame: false` a heartbeat).
    func consumed(frame: Bool = false) {
        buffer.withLock { buffer in
            guard !buffer.closed else { return }
            buffer.items -= 1
            guard frame, let written = buffer.frames.popFirst() else { return }
            buffer.bytes -= written.bytes.readableBytes
            written.release(in: memory)
        }
    }

    /// Bytes of frames offered and not yet written.
    var bufferedBytes: Int { buffer.withLock { $0.bytes } }

    var isClosed: Bool { buffer.withLock { $0.closed } }

    /// Ends the stream after what is buffered; returns whether this call closed it. What it
    /// still buffers no longer counts against ``StreamMemory``.
    @discardableResult
    func close(_ reason: CloseReason) -> Bool {
        let closed = buffer.withLock { buffer -> Bool in
            guard !buffer.closed else { return false }
            buffer.closed = true
            for frame in buffer.frames { frame.release(in: memory) }
            buffer.frames.removeAll()
            return true
        }
        guard closed else { return false }
        continuation.yield(.closed(reason))
        continuation.finish()
        return true
    }

    /// Closes the stream and cuts its connection because streams hold too much memory.
    func cut() {
        if close(.overflow) { onOverflow() }
    }

    static func uptimeMillis() -> Int64 {
        let components = ContinuousClock.now.duration(to: ContinuousClock.Instant.zeroReference).components
        return -(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }
}

/// One event's encoded frame, shared by every stream that carries it. Its bytes count against
/// ``StreamMemory`` once, from the first stream that takes it until the last one lets it go.
public final class SharedFrame: Sendable {
    public let bytes: ByteBuffer
    private let holders = Atomic<Int>(0)

    init(_ bytes: ByteBuffer) {
        self.bytes = bytes
    }

    func retain(in memory: StreamMemory) {
        if holders.add(1, ordering: .relaxed).newValue == 1 { memory.add(bytes.readableBytes) }
    }

    func release(in memory: StreamMemory) {
        if holders.subtract(1, ordering: .relaxed).newValue == 0 { memory.remove(bytes.readableBytes) }
    }
}

/// The bytes of event frames all streams hold together (`ORCH_SSE_MEMORY`).
public final class StreamMemory: Sendable {
    /// The most bytes all streams may hold; beyond it the slowest streams are cut.
    public let limit: Int
    private let total = Atomic<Int>(0)

    public init(limit: Int = .max) {
        self.limit = limit
    }

    func add(_ bytes: Int) { if bytes > 0 { total.add(bytes, ordering: .relaxed) } }
    func remove(_ bytes: Int) { if bytes > 0 { total.subtract(bytes, ordering: .relaxed) } }

    /// Bytes held now.
    public var held: Int { total.load(ordering: .relaxed) }
    var isOverLimit: Bool { held > limit }
}

extension ContinuousClock.Instant {
    /// A fixed instant to measure uptime from.
    static let zeroReference = ContinuousClock.now
}
