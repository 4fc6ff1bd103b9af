import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Sits right after the HTTP/1 decoder and tells the connection's ``ConnectionGuard`` where
/// requests and responses begin and end, and when the decoder failed.
///
/// It also makes HTTP/1.0 behave: a request that does not ask to be kept alive (HTTP/1.0
/// without `Connection: keep-alive`, or any request with `Connection: close`) is marked
/// `Connection: close`, so the request loop stops after answering it, and its response says so.
final class RequestPhaseObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let connectionGuard: ConnectionGuard
    private var context: ChannelHandlerContext?
    /// A request on this connection asked for it to close after its response.
    private var closing = false
    /// The guard refused the current request's head: its body and end go nowhere.
    private var discarding = false

    init(guard connectionGuard: ConnectionGuard) {
        self.connectionGuard = connectionGuard
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connectionGuard.observer = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(var head):
            // A method the HTTP types cannot carry would fail in the next handler.
            guard (try? HTTPRequest.Method(head.method)) != nil else {
                discarding = true
                connectionGuard.answer(ConnectionGuard.answer(for: .invalidMethod, headerLimit: 0), reason: .malformed)
                return
            }
            discarding = false
            let keepAlive = head.isKeepAlive
            connectionGuard.requestHeadReceived(keepAlive: keepAlive)
            if !keepAlive {
                closing = true
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body:
            if !discarding { context.fireChannelRead(data) }
        case .end:
            guard !discarding else { return }
            connectionGuard.requestEnded()
            context.fireChannelRead(data)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        if let passOn = connectionGuard.decodingFailed(parserError) { context.fireErrorCaught(passOn) }
    }

    /// Fails the request being read with `error` (its handler's body read throws it).
    func failRequest(_ error: any Error) {
        context?.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closing:
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .head, .body:
            context.write(data, promise: promise)
        case .end:
            let written = promise ?? context.eventLoop.makePromise()
            let connectionGuard = self.connectionGuard
            written.futureResult.assumeIsolated().whenComplete { _ in connectionGuard.responseEnded() }
            context.write(data, promise: written)
        }
    }
}
