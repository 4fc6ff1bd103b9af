import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import OrchModels
import Synchronization

/// `orch bench sse`: many subscribers while events are written at a steady rate.
///
/// Delivery latency runs from the event's timestamp (taken just before its transaction
/// commits) to the frame's arrival at each subscriber; frames/s counts what every subscriber
/// received over the writing time.
struct BenchSSE: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "sse", abstract: "SSE fan-out: delivery latency and frames per second.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Concurrent subscribers.") var subscribers = 1000
    @Option(help: "Events written per second.") var rate = 20
    @Option(help: "Seconds of writing.") var duration = 10

    var connectionsNeeded: Int { subscribers + 8 }

    func measure(_ bench: BenchContext) async throws {
        let (client, server) = (bench.client, bench.server)
        let token = bench.http.token ?? ""
        let counters = Counters()
        let readers = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<subscribers {
                    group.addTask {
                        await subscribe(client, server, token: token, counters: counters)
                    }
                }
            }
        }
        while counters.connected.load(ordering: .relaxed) < subscribers { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .seconds(1))

        let started = ContinuousClock.now
        var written = 0
        let interval = Duration.seconds(1) / rate
        var next = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(duration) {
            next += interval
            let response = try await bench.http.send(.POST, "/dispatch", body: #"{"coreId":"bench-sse"}"#)
            guard response.status == 202 else { throw BenchError("dispatch answered \(response.status)") }
            written += 1
            try await Task.sleep(until: next)
        }
        let writing = (ContinuousClock.now - started).seconds
        let expected = written * subscribers
        let drainDeadline = ContinuousClock.now + .seconds(30)
        while counters.frames.load(ordering: .relaxed) < expected && ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        readers.cancel()
        await readers.value
        let delivered = counters.frames.load(ordering: .relaxed)
        let scenario = "sse, \(subscribers) subscribers, \(rate) events/s"
        bench.report.add(scenario, "frames delivered", Double(delivered) / writing, "frames/s", target: ">= 20000")
        bench.report.add(scenario, "frames missing", Double(expected - delivered), "frames", target: "0")
        bench.report.addLatencies(scenario, "delivery", counters.latencies.withLock { $0 }, p99Target: "<= 50")
    }

    /// Shared tallies of the subscribers.
    final class Counters: Sendable {
        let connected = Atomic<Int>(0)
        let frames = Atomic<Int>(0)
        let latencies = Mutex<[Double]>([])
    }

    func subscribe(_ client: HTTPClient, _ server: BenchServer, token: String, counters: Counters) async {
        var request = HTTPClientRequest(url: "\(server.baseURL)/sse/events?filter=task.created")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        do {
            let response = try await client.execute(request, timeout: .hours(1))
            counters.connected.add(1, ordering: .relaxed)
            var pending = ""
            var mine: [Double] = []
            defer { counters.latencies.withLock { $0 += mine } }
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let range = pending.range(of: "\n\n") {
                    let frame = pending[..<range.lowerBound]
                    pending = String(pending[range.upperBound...])
                    guard frame.hasPrefix("id:"), let dataStart = frame.range(of: "data: ") else { continue }
                    let received = Date()
                    counters.frames.add(1, ordering: .relaxed)
                    let json = frame[dataStart.upperBound...]
                    if let stamp = json.range(of: #""timestamp":""#),
                        let end = json[stamp.upperBound...].firstIndex(of: "\""),
                        let sent = Timestamp.parse(String(json[stamp.upperBound..<end]))
                    {
                        mine.append(received.timeIntervalSince(sent) * 1000)
                    }
                }
                if Task.isCancelled { break }
            }
        } catch {
            return
        }
    }
}
