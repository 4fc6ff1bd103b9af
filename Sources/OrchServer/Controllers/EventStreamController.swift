import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchCore
import OrchModels
import OrchStore
import ServiceLifecycle

/// `GET /sse/events`: the live event stream.
///
/// Frames are `id: <seq>` and `data: <event JSON>` with no `event:` field, so `onmessage`
/// receives everything. The stream opens with `retry:`; a `heartbeat` data frame without an id
/// is sent after `ORCH_SSE_HEARTBEAT` seconds without traffic. With `Last-Event-ID` (header) or
/// `last_event_id` (query), every stored event after it that matches the filters is replayed
/// first, then the stream continues live with no gap and no duplicate: the subscription is
/// opened first, the replay covers everything up to the subscription's watermark, and the live
/// part starts right after it.
struct EventStreamController {
    let store: any Store
    let bus: EventBus
    /// Undelivered events a stream may have before it is cut.
    let bufferCapacity: Int
    /// Bytes of undelivered frames a stream may have before it is cut.
    var bufferBytes: Int = .max
    /// Counts open streams (`orch_sse_connections_active`).
    let metrics: OrchMetrics
    /// The `retry:` advice to clients, milliseconds.
    static let retryMilliseconds = 3000
    /// Events read per store query during a replay.
    static let replayPage = 500

    /// The stream's path, the one route that accepts `?access_token=`.
    static let path = "/sse/events"

    func addRoutes(to api: APIRouter) {
        api.on(.get, Self.path, access: .role(.viewer), acceptsQueryToken: true, handler: stream)
    }

    @Sendable func stream(_ request: Request, context: OrchRequestContext) async throws -> Response {
        let query = QueryParameters(request)
        let filter = EventFilter(filter: query.string("filter"), taskID: query.string("task_id"), coreID: query.string("core_id"))
        let resumeAfter = try Self.lastEventID(request)
        let channel = context.channel
        let (subscription, watermark) = bus.subscribe(
            filter: filter, userID: context.identity?.userID, apiTokenID: context.identity?.apiTokenID,
            sessionGeneration: context.identity?.sessionGeneration, expiresAt: context.identity?.tokenExpiresAt,
            capacity: bufferCapacity, byteCapacity: bufferBytes, onOverflow: { channel.close(promise: nil) })
        let bus = self.bus
        let store = self.store
        let logger = context.logger
        let connections = metrics.sseConnections
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no",
        ]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                connections.increment()
                defer {
                    connections.decrement()
                    bus.unsubscribe(subscription)
                }
                // A client that goes away is noticed at once (not at the next write), so the
                // stream and its count end with the connection.
                let hangUp = HangUpSignal()
                hangUp.whenFired { subscription.close(.disconnected) }
                try await hangUp.watching(channel) {
                    try await withGracefulShutdownHandler {
                        try await writer.write(ByteBuffer(string: "retry: \(Self.retryMilliseconds)\n\n"))
                        if let resumeAfter, resumeAfter < watermark {
                            var cursor = resumeAfter
                            while cursor < watermark {
                                var page: [EventRecord]
                                if let recent = bus.recentEvents(after: cursor, through: watermark, matching: filter) {
                                    page = recent
                                } else {
                                    page = try await store.events(
                                        after: cursor, through: watermark, matching: filter, limit: Self.replayPage)
                                }
                                if page.isEmpty { break }
                                var buffer = ByteBuffer()
                                for event in page { try Self.appendFrame(event, to: &buffer) }
                                try await writer.write(buffer)
                                cursor = page.count < Self.replayPage ? watermark : page.last!.sequence
                            }
                        }
                        loop: for await item in subscription.stream {
                            switch item {
                            case .frame(let frame):
                                try await writer.write(frame.bytes)
                                subscription.consumed(frame: true)
                            case .heartbeat:
                                subscription.consumed()
                                try await writer.write(Self.heartbeatFrame())
                            case .closed(let reason):
                                logger.debug("event stream closed", metadata: ["reason": "\(reason.rawValue)"])
                                break loop
                            }
                        }
                    } onGracefulShutdown: {
                        subscription.close(.shutdown)
                    }
                }
                try await writer.finish(nil)
            })
    }

    /// The resume point: `Last-Event-ID` header, else `last_event_id` query; `123` or
    /// `event-123` (at most 18 digits). Either one given but empty or malformed is 400.
    static func lastEventID(_ request: Request) throws -> Int64? {
        let header = try request.headers[.lastEventID].map(parseEventID)
        let query = try request.uri.queryParameters["last_event_id"].map { try parseEventID(String($0)) }
        return header ?? query
    }

    static func parseEventID(_ text: String) throws -> Int64 {
        let digits = text.hasPrefix("event-") ? text.dropFirst("event-".count) : Substring(text)
        guard (1...18).contains(digits.count), digits.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }),
            let value = Int64(digits)
        else {
            throw OrchError.invalidParameter("last_event_id", "must be an event id such as 123 or event-123")
        }
        return value
    }

    /// The frame of `event`: `id: <seq>\ndata: <json>\n\n`.
    static func frame(_ event: EventRecord) -> ByteBuffer {
        var buffer = ByteBuffer()
        // The writer fails only on values JSON cannot hold, which stored events never have.
        try? appendFrame(event, to: &buffer)
        return buffer
    }

    /// Appends `id: <seq>\ndata: <json>\n\n`.
    static func appendFrame(_ event: EventRecord, to buffer: inout ByteBuffer) throws {
        let json = try JSONWriter().encode(event.apiValue)
        buffer.writeString("id: \(event.sequence)\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
    }

    /// A heartbeat data frame, without an id so that it does not move the client's resume point.
    static func heartbeatFrame() -> ByteBuffer {
        ByteBuffer(string: "data: {\"data\":{},\"event_type\":\"heartbeat\",\"timestamp\":\"\(Timestamp.format(Date()))\"}\n\n")
    }
}

extension HTTPField.Name {
    static let xAccelBuffering = HTTPField.Name("X-Accel-Buffering")!
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
