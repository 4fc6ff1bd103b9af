import NIOCore
import Synchronization

/// Tells a waiting request that its client hung up.
///
/// The server allows half-closed connections, so a client that closes its side shows up only as
/// an `inputClosed` event on the connection (or as the connection going inactive on a reset);
/// nothing reaches a handler that is busy waiting. A ``HangUpWatcher`` placed first in the
/// connection's pipeline for the time of the wait catches both and fires this signal.
final class HangUpSignal: Sendable {
    private let state = Mutex<(fired: Bool, callbacks: [@Sendable () -> Void])>((false, []))

    func fire() {
        let callbacks = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.callbacks = [] }
            return state.callbacks
        }
        for callback in callbacks { callback() }
    }

    /// Calls `callback` when the signal fires (at once if it already has).
    func whenFired(_ callback: @escaping @Sendable () -> Void) {
        let firedAlready = state.withLock { state -> Bool in
            if !state.fired { state.callbacks.append(callback) }
            return state.fired
        }
        if firedAlready { callback() }
    }

    /// Runs `body` with a watcher on `channel` that fires this signal on hang-up, and removes
    /// the watcher afterwards.
    func watching<T: Sendable>(_ channel: any Channel, _ body: () async throws -> T) async throws -> T {
        let watcher = HangUpWatcher(signal: self)
        try? await channel.pipeline.addHandler(watcher, position: .first).get()
        if !channel.isActive { fire() }
        defer { channel.pipeline.removeHandler(watcher, promise: nil) }
        return try await body()
    }
}

/// See ``HangUpSignal``.
final class HangUpWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    let signal: HangUpSignal

    init(signal: HangUpSignal) {
        self.signal = signal
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { signal.fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        signal.fire()
        context.fireChannelInactive()
    }
}
