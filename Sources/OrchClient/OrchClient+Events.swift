import AsyncHTTPClient
import Foundation
import NIOCore
import OrchModels

extension OrchClient {
    /// Live events from `GET /sse/events`, as an async sequence that reconnects by itself.
    ///
    /// After a dropped connection it reconnects with `Last-Event-ID`, so the server replays
    /// what was missed: the consumer sees every matching event once, in order, across
    /// disconnects. Heartbeats are not passed on. The sequence ends when the consumer stops
    /// iterating; it throws when the server refuses the stream (401, 403, 400).
    ///
    /// - Parameters:
    ///   - filter: comma-separated event types, `task.*` for a prefix; default all.
    ///   - taskID: only this task's events.
    ///   - coreID: only this core's events.
    ///   - lastEventID: start after this event (its sequence); default: from now on.
    ///   - reconnectDelay: wait before reconnecting; default the server's `retry:` advice
    ///     (3 s), doubling on repeated failures up to 30 s.
    public func events(
        filter: String? = nil, taskID: String? = nil, coreID: String? = nil, lastEventID: Int64? = nil,
        reconnectDelay: Duration? = nil
    ) -> AsyncThrowingStream<TaskEvent, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                var last = lastEventID
                var advised = Duration.seconds(3)
                var failures = 0
                while !Task.isCancelled {
                    do {
                        var request = self.request(
                            .GET, "/sse/events", query: [("filter", filter), ("task_id", taskID), ("core_id", coreID)])
                        request.headers.add(name: "Accept", value: "text/event-stream")
                        if let last { request.headers.add(name: "Last-Event-ID", value: String(last)) }
                        let response = try await http.execute(request, timeout: .hours(24 * 365))
                        let status = Int(response.status.code)
                        guard status == 200 else {
                            let body = try await response.body.collect(upTo: 1 << 20)
                            let error = OrchClientError(
                                status: status, retryAfter: response.headers.first(name: "Retry-After"), body: Data(buffer: body))
                            if status == 429 || status >= 500 { throw Retryable(error: error) }
                            continuation.finish(throwing: error)
                            return
                        }
                        failures = 0
                        var parser = EventStreamParser()
                        for try await chunk in response.body {
                            for frame in parser.feed(chunk) {
                                if let retry = frame.retry { advised = .milliseconds(retry) }
                                guard let id = frame.id.flatMap(Int64.init), let data = frame.data else { continue }
                                if let last, id <= last { continue }
                                let event = try Timestamp.makeDecoder().decode(TaskEvent.self, from: Data(data.utf8))
                                last = id
                                continuation.yield(event)
                            }
                        }
                    } catch is CancellationError {
                        break
                    } catch {
                        // A dropped connection, a refused one, a 429 or 5xx: try again.
                        failures += 1
                    }
                    let base = reconnectDelay ?? advised
                    let wait = failures > 1 ? min(base * (1 << min(failures - 1, 5)), max(base, .seconds(30))) : base
                    do { try await Task.sleep(for: wait) } catch { break }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}

/// An error answer worth retrying (429, 5xx) on a stream.
private struct Retryable: Error {
    let error: OrchClientError
}

/// Splits a `text/event-stream` body into frames (fields joined per the SSE rules that matter
/// here: `id`, `data`, `retry`; comments ignored).
struct EventStreamParser {
    struct Frame {
        var id: String?
        var data: String?
        var retry: Int?
    }

    private var pending = ""
    private var current = Frame()
    private var dataLines: [String] = []

    mutating func feed(_ chunk: ByteBuffer) -> [Frame] {
        pending += String(buffer: chunk)
        var frames: [Frame] = []
        while let newline = pending.firstIndex(where: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = String(pending[..<newline])
            pending.removeSubrange(...newline)
            if line.isEmpty {
                if !dataLines.isEmpty { current.data = dataLines.joined(separator: "\n") }
                if current.data != nil || current.retry != nil { frames.append(current) }
                current = Frame()
                dataLines = []
                continue
            }
            if line.hasPrefix(":") { continue }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let field = String(parts[0])
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.hasPrefix(" ") { value.removeFirst() }
            switch field {
            case "id": current.id = value
            case "data": dataLines.append(value)
            case "retry": current.retry = Int(value)
            default: break
            }
        }
        return frames
    }
}
