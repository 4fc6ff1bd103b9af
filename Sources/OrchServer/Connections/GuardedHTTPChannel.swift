import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// HTTP/1.1 connections as ORCH-Next serves them: Hummingbird's request loop behind a
/// ``ConnectionGuard`` (deadlines, limits, error answers, proper closing) and admission by the
/// ``ConnectionTable`` (connection caps, shutdown).
struct GuardedHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let connections: ConnectionTable
    let metrics: OrchMetrics?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let refusal = connections.admit(channel)
            if refusal == nil {
                let connections = self.connections
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
            }
            let connectionGuard = ConnectionGuard(
                limits: limits, connections: connections, refusal: refusal, metrics: metrics)
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderFieldSize = limits.maximumHeaderBytes
            decoderLimits.maxHeaderListSize = limits.maximumHeaderBytes
            decoderLimits.maxHeaderFieldCount = limits.maximumHeaderFields
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(connectionGuard)
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
            try pipeline.addHandler(RequestPhaseObserver(guard: connectionGuard))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            return try NIOAsyncChannel(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 through ``GuardedHTTPChannel``.
    static func guarded(limits: ConnectionLimits, connections: ConnectionTable, metrics: OrchMetrics?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTPChannel(responder: responder, limits: limits, connections: connections, metrics: metrics)
        }
    }
}
