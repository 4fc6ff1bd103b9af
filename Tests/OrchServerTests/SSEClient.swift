import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One frame of an event stream, as its lines were received.
struct SSEFrame: Sendable, Hashable {
    var lines: [String]

    func field(_ name: String) -> String? {
        lines.first { $0.hasPrefix("\(name):") }.map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
    }

    var id: String? { field("id") }
    var data: String? { field("data") }

    /// The JSON object of `data`.
    var json: [String: Any]? {
        guard let data else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any]
    }

    var eventType: String? { json?["event_type"] as? String }

    /// `data.resource` (lock events).
    var resource: String? { (json?["data"] as? [String: Any])?["resource"] as? String }
}

/// A test client for `/sse/events` over a real socket (AsyncHTTPClient, streaming body).
final class SSEConnection: Sendable {
    let status: Int
    let headers: HTTPHeaders
    private final class Log: Sendable {
        let state = Mutex<(frames: [SSEFrame], raw: String, ended: Bool)>(([], "", false))
    }

    private let log = Log()
    private let reader: Task<Void, Never>

    /// Opens a stream; returns once the response head arrived.
    static func open(port: Int, query: String = "", headers: [(String, String)] = []) async throws -> SSEConnection {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/sse/events\(query.isEmpty ? "" : "?" + query)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, deadline: .now() + .hours(1))
        return SSEConnection(response: response)
    }

    private init(response: HTTPClientResponse) {
        status = Int(response.status.code)
        headers = response.headers
        let log = self.log
        reader = Task {
            var pending = ""
            do {
                for try await chunk in response.body {
                    pending += String(buffer: chunk)
                    while let range = pending.range(of: "\n\n") {
                        let block = String(pending[..<range.lowerBound])
                        pending = String(pending[range.upperBound...])
                        let frame = SSEFrame(lines: block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
                        log.state.withLock {
                            $0.frames.append(frame)
                            $0.raw += block + "\n\n"
                        }
                    }
                }
            } catch {}
            log.state.withLock { $0.ended = true }
        }
    }

    var frames: [SSEFrame] { log.state.withLock { $0.frames } }
    /// Frames that carry an event (an id).
    var events: [SSEFrame] { frames.filter { $0.id != nil } }
    var raw: String { log.state.withLock { $0.raw } }
    var ended: Bool { log.state.withLock { $0.ended } }

    /// Waits until `condition` holds on the frames received, or `timeout` passes; returns whether it held.
    @discardableResult
    func waitUntil(timeout: Duration = .seconds(10), _ condition: ([SSEFrame]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(frames) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(frames)
    }

    /// Waits for the server to end the stream.
    @discardableResult
    func waitForEnd(timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if ended { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return ended
    }

    func close() {
        reader.cancel()
    }

    deinit { reader.cancel() }
}
