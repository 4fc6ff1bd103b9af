import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import OrchCore
import OrchModels

/// The first handler of every connection (it sees the raw bytes): enforces the connection's
/// deadlines, answers what the HTTP layer cannot (a refused connection, a request head that
/// is too slow, too large or malformed) with the error envelope, and closes sockets properly.
///
/// A connection is always in one phase, each with its deadline:
/// - waiting for its first request: `headerTimeout` from opening (then closed silently);
/// - reading a request head: `headerTimeout` from its first byte (then 408);
/// - reading a request body: `bodyTimeout` since the last read (then 408 to the handler);
/// - answering: none (a long poll or a stream is not idle);
/// - idle between requests: `idleTimeout` since the last response (then closed silently);
/// - lingering after an error answer or a `Connection: close` response: the output is closed,
///   whatever the client still sends is read and dropped until it closes its side, for at
///   most `lingerTimeout`; then the socket is closed. A socket is never left half-open.
///
/// Deadlines are checked by one timer per connection that fires at most every
/// ``ConnectionLimits/checkInterval``, so a request costs no timer work.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum Phase {
        case awaitingFirstRequest, readingHead, readingBody, answering, idle, lingering, closed
    }

    /// Why the guard ended a connection (`orch_connections_closed_total{reason}`).
    enum CloseReason: String {
        case headerTimeout = "header_timeout"
        case bodyTimeout = "body_timeout"
        case idleTimeout = "idle_timeout"
        case malformed
        case headersTooLarge = "headers_too_large"
    }

    let limits: ConnectionLimits
    let connections: ConnectionTable
    let metrics: OrchMetrics?
    /// Set when the connection was refused at accept: it is answered 503 and closed.
    let refusal: ConnectionTable.Refusal?
    /// The handler after the HTTP decoder, which reports request and response boundaries.
    weak var observer: RequestPhaseObserver?

    private(set) var phase = Phase.awaitingFirstRequest
    private var context: ChannelHandlerContext?
    private var openedAt = NIODeadline.now()
    private var headStartedAt = NIODeadline.now()
    private var lastReadAt = NIODeadline.now()
    private var lastAnswerAt = NIODeadline.now()
    private var lingerStartedAt = NIODeadline.now()
    /// When bytes of a next request arrived while the current one was being answered.
    private var nextHeadStartedAt: NIODeadline?
    private var headBytes = 0
    /// Requests whose head arrived and whose response has not been written yet.
    private var openRequests = 0
    /// No further request is served: after the open ones are answered, the connection closes.
    private var closeAfterResponses = false
    /// An answer to send once the open requests are answered (a malformed pipelined request).
    private var pendingAnswer: (OrchError, CloseReason)?
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?

    init(limits: ConnectionLimits, connections: ConnectionTable, refusal: ConnectionTable.Refusal?, metrics: OrchMetrics?) {
        self.limits = limits
        self.connections = connections
        self.refusal = refusal
        self.metrics = metrics
    }

    /// Bytes of request line and headers the guard lets through before answering 431 itself
    /// (the decoder's own limit covers the header fields; this also bounds the request line).
    var headByteLimit: Int { limits.maximumHeaderBytes + 8 * 1024 }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { activate(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        if let refusal {
            phase = .closed
            let message =
                refusal == .shutdown
                ? "The server is shutting down" : "The server has too many open connections; try again later"
            let error = OrchError.serviceUnavailable(message, details: ["reason": .string(refusal.rawValue)], retryAfter: 1)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(Self.rawResponse(error))))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        openedAt = .now()
        phase = .awaitingFirstRequest
        schedule(at: openedAt + TimeAmount(limits.checkInterval))
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        switch phase {
        case .lingering, .closed:
            return  // dropped: the answer is out, the rest of the request is not wanted
        case .awaitingFirstRequest:
            phase = .readingHead
            headStartedAt = openedAt
            headBytes = 0
        case .idle:
            phase = .readingHead
            headStartedAt = .now()
            headBytes = 0
        case .answering:
            if nextHeadStartedAt == nil { nextHeadStartedAt = .now() }
        case .readingHead, .readingBody:
            break
        }
        lastReadAt = .now()
        if phase == .readingHead { headBytes += bytes }
        context.fireChannelRead(data)
        // Still no complete head after this many bytes (checked after the decoder had them):
        // the request line or the headers are too large.
        if phase == .readingHead, headBytes > headByteLimit {
            answer(.headersTooLarge(limit: limits.maximumHeaderBytes), reason: .headersTooLarge)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // While lingering nobody above asks for data any more; keep reading it off the socket.
        if phase == .lingering { context.read() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, phase == .lingering {
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            connections.beginDrain(grace: limits.shutdownGrace, on: context.eventLoop)
            closeAfterResponses = true
            switch phase {
            case .awaitingFirstRequest, .idle, .readingHead:
                phase = .closed
                context.close(promise: nil)
            case .readingBody, .answering, .lingering, .closed:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Reports from the HTTP layer

    /// A request head was decoded.
    func requestHeadReceived(keepAlive: Bool) {
        openRequests += 1
        if !keepAlive { closeAfterResponses = true }
        if phase != .lingering && phase != .closed { phase = .readingBody }
        headBytes = 0
        nextHeadStartedAt = nil
        lastReadAt = .now()
    }

    /// A request's body ended.
    func requestEnded() {
        guard phase == .readingBody else { return }
        if openRequests > 0 {
            phase = .answering
        } else {
            afterResponses()
        }
    }

    /// A response was written completely.
    func responseEnded() {
        openRequests = max(0, openRequests - 1)
        lastAnswerAt = .now()
        if openRequests == 0, phase == .answering { afterResponses() }
    }

    /// The HTTP decoder failed. Returns the error to pass on to the request handler (when a
    /// request body is being read, so that the handler never takes a truncated body for a
    /// whole one), or `nil` when the guard answers the client itself.
    func decodingFailed(_ error: HTTPParserError) -> (any Error)? {
        let answer = Self.answer(for: error, headerLimit: limits.maximumHeaderBytes)
        let reason: CloseReason = error == .headerOverflow ? .headersTooLarge : .malformed
        switch phase {
        case .awaitingFirstRequest, .readingHead, .idle:
            self.answer(answer, reason: reason)
            return nil
        case .readingBody:
            // No more of this body will come: answer it (through its handler), then close.
            closeAfterResponses = true
            metrics?.recordConnectionClosed(reason: reason.rawValue)
            if openRequests > 0 { phase = .answering } else { linger() }
            return RequestStreamError(answer: answer)
        case .answering:
            closeAfterResponses = true
            pendingAnswer = (answer, reason)
            return nil
        case .lingering, .closed:
            return nil
        }
    }

    /// Everything asked was answered: serve the next request, wait for one, or close.
    private func afterResponses() {
        if let (answer, reason) = pendingAnswer {
            pendingAnswer = nil
            self.answer(answer, reason: reason)
        } else if closeAfterResponses {
            linger()
        } else if let started = nextHeadStartedAt {
            phase = .readingHead
            headStartedAt = started
            nextHeadStartedAt = nil
        } else {
            phase = .idle
        }
    }

    // MARK: Answers and closing

    /// Writes `error` as a complete response straight to the socket, then lingers.
    func answer(_ error: OrchError, reason: CloseReason) {
        guard let context, phase != .lingering, phase != .closed else { return }
        metrics?.recordConnectionClosed(reason: reason.rawValue)
        phase = .lingering
        lingerStartedAt = .now()
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(Self.rawResponse(error))), promise: nil)
        linger()
    }

    /// Closes the output (after what is written), then drops input until the client closes or
    /// `lingerTimeout` passes.
    private func linger() {
        guard let context, phase != .closed else { return }
        if phase != .lingering {
            phase = .lingering
            lingerStartedAt = .now()
        }
        context.close(mode: .output, promise: nil)
        context.read()
        schedule(at: lingerStartedAt + TimeAmount(limits.lingerTimeout))
    }

    private func close(_ reason: CloseReason?) {
        guard let context, phase != .closed else { return }
        if let reason { metrics?.recordConnectionClosed(reason: reason.rawValue) }
        phase = .closed
        context.close(promise: nil)
    }

    // MARK: The deadline timer

    private func schedule(at deadline: NIODeadline) {
        guard let context else { return }
        if let firesAt = timerFiresAt, firesAt <= deadline { return }
        timer?.cancel()
        timerFiresAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerFiresAt = nil
            check()
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerFiresAt = nil
    }

    /// Acts on the current phase's deadline, or checks again later.
    private func check() {
        let now = NIODeadline.now()
        let deadline: NIODeadline?
        switch phase {
        case .awaitingFirstRequest: deadline = openedAt + TimeAmount(limits.headerTimeout)
        case .readingHead: deadline = headStartedAt + TimeAmount(limits.headerTimeout)
        case .readingBody: deadline = lastReadAt + TimeAmount(limits.bodyTimeout)
        case .idle: deadline = lastAnswerAt + TimeAmount(limits.idleTimeout)
        case .lingering: deadline = lingerStartedAt + TimeAmount(limits.lingerTimeout)
        case .answering: deadline = nil
        case .closed: return
        }
        if let deadline, now >= deadline {
            switch phase {
            case .awaitingFirstRequest: close(.headerTimeout)
            case .readingHead:
                answer(
                    OrchError.timeout(
                        "The request head did not arrive within \(limits.headerTimeout.wholeSeconds) s",
                        details: ["timeout": .int(limits.headerTimeout.wholeSeconds)]),
                    reason: .headerTimeout)
            case .readingBody:
                // The handler reading the body gets the error and answers 408 in the envelope.
                metrics?.recordConnectionClosed(reason: CloseReason.bodyTimeout.rawValue)
                closeAfterResponses = true
                phase = openRequests > 0 ? .answering : .idle
                observer?.failRequest(
                    RequestStreamError(
                        answer: OrchError.timeout(
                            "The request body stalled for more than \(limits.bodyTimeout.wholeSeconds) s",
                            details: ["timeout": .int(limits.bodyTimeout.wholeSeconds)])))
                if openRequests == 0 { linger() }
            case .idle: close(.idleTimeout)
            case .lingering: close(nil)
            case .answering, .closed: break
            }
        }
        if phase != .closed {
            let next = now + TimeAmount(limits.checkInterval)
            schedule(at: deadline.map { $0 > now ? min($0, next) : next } ?? next)
        }
    }

    // MARK: Raw responses

    /// The error envelope for a request the decoder refused.
    static func answer(for error: HTTPParserError, headerLimit: Int) -> OrchError {
        switch error {
        case .headerOverflow:
            return .headersTooLarge(limit: headerLimit)
        case .invalidMethod:
            return .unknownMethod
        default:
            return OrchError.validation("Malformed HTTP request", details: ["issue": .string("\(error)")])
        }
    }

    /// A complete HTTP/1.1 response carrying `error` in the envelope, closing the connection.
    static func rawResponse(_ error: OrchError) -> ByteBuffer {
        let requestID = Identifier.make("req")
        let body = EnvelopeMiddleware.envelopeBody(error, requestID: requestID)
        var head = "HTTP/1.1 \(error.status) \(reasonPhrase(error.status))\r\n"
        head += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
        head += "Connection: close\r\nX-Request-ID: \(requestID)\r\n"
        for (name, value) in error.headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        var buffer = ByteBuffer(string: head + "\r\n")
        buffer.writeBytes(body)
        return buffer
    }
}

/// The reason phrase of the statuses the guard answers with.
private func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 400: "Bad Request"
    case 408: "Request Timeout"
    case 431: "Request Header Fields Too Large"
    case 501: "Not Implemented"
    case 503: "Service Unavailable"
    default: "Error"
    }
}

/// A request whose stream failed under its handler (a malformed body, a stalled upload); the
/// envelope middleware answers with `answer`.
struct RequestStreamError: Error {
    let answer: OrchError
}

extension Duration {
    /// The duration in whole seconds, rounded down.
    var wholeSeconds: Int64 { components.seconds }
}
