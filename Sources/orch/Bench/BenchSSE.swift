import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import OrchModels
import Synchronization

/// `orch bench sse`: many idle subscribers, then events written at a steady rate.
///
/// Prints the server's resident memory before and after the subscribers connect (per idle
/// connection), and the delivery latency of `task.created` events from the event's timestamp
/// (taken just before its transaction commits) to the frame's arrival at each subscriber.
struct BenchSSE: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sse", abstract: "SSE fan-out: memory per connection and delivery latency.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Concurrent subscribers.") var subscribers = 1000
    @Option(help: "Events written per second.") var rate = 50
    @Option(help: "Seconds of writing.") var duration = 10

    func run() async throws {
        let (server, client, http) = try await target.connect(connections: subscribers + 8, readTimeout: .hours(1))
        defer {
            server.stop()
            _ = client.shutdown()
        }
        let token = http.token ?? ""

        try await Task.sleep(for: .seconds(1))
        let idleKiB = server.residentKiB()
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
        try await Task.sleep(for: .seconds(2))
        let connectedKiB = server.residentKiB()

        let started = ContinuousClock.now
        var written = 0
        let interval = Duration.seconds(1) / rate
        var next = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(duration) {
            next += interval
            var request = HTTPClientRequest(url: "\(server.baseURL)/dispatch")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"coreId":"bench-sse"}"#))
            _ = try await client.execute(request, timeout: .seconds(30))
            written += 1
            try await Task.sleep(until: next)
        }
        let expected = written * subscribers
        let drainDeadline = ContinuousClock.now + .seconds(30)
        while counters.frames.load(ordering: .relaxed) < expected && ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = ContinuousClock.now - started
        readers.cancel()
        await readers.value
        let statistics = Statistics(counters.latencies.withLock { $0 })
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("sse: \(subscribers) subscribers, \(written) events at \(rate)/s for \(duration) s")
        let delivered = counters.frames.load(ordering: .relaxed)
        print("sse: frames delivered \(delivered) of \(expected), \(format(Double(delivered) / seconds, decimals: 0)) frames/s")
        print("sse: delivery latency ms p50 \(format(statistics.percentile(0.5))) p99 \(format(statistics.percentile(0.99))) max \(format(statistics.maximum))")
        if let idleKiB, let connectedKiB {
            let perConnection = Double(connectedKiB - idleKiB) / Double(subscribers)
            print("sse: server RSS idle \(idleKiB / 1024) MiB, with \(subscribers) idle streams \(connectedKiB / 1024) MiB, \(format(perConnection)) KiB per connection")
        }
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
