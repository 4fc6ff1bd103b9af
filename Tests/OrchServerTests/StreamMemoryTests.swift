import Foundation
import OrchCore
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

/// Streams that never read are bounded in bytes, each and all together.
@Suite struct StreamMemoryTests {
    /// Publishes `count` events of about `size` bytes each, in batches, straight through the store and bus.
    static func publish(
        _ parts: OrchServerParts, store: any Store, count: Int, size: Int, pause: Duration = .milliseconds(2)
    ) async throws {
        let payload = String(repeating: "m", count: size)
        for batch in stride(from: 0, to: count, by: 20) {
            let drafts = (batch..<min(count, batch + 20)).map { index in
                EventDraft(type: .systemAlert, timestamp: Date(), data: ["message": .string(payload), "n": .int(Int64(index))])
            }
            parts.bus.publish(try await store.appendEvents(drafts, taskID: nil, coreID: nil))
            try await Task.sleep(for: pause)
        }
    }

    /// With a 64 KiB byte bound, a stalled stream of 60 KB events is cut long before its
    /// 1024-event bound, and while it held it nothing counted above the bound.
    @Test(arguments: TestBackend.all)
    func aStalledStreamIsCutByItsByteBound(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.sseBufferBytes = 64 << 10
        try await EventStreamTests.withLiveServer(configuration, backend: backend) { api, port, parts in
            let token = try await api.adminToken()
            let stalled = try StalledSocket(port: port, path: "/sse/events", token: token)
            #expect(await waitFor { parts.bus.subscriptionCount == 1 })
            // 300 events of 60 KB: 18 MB, more than the kernel's socket buffers take.
            try await Self.publish(parts, store: parts.store, count: 300, size: 60_000)
            #expect(await waitFor { parts.bus.subscriptionCount == 0 }, "the stalled stream is cut")
            #expect(parts.bus.memory.held == 0)
            #expect(stalled.readsToEndOfStream(), "the server closed the stalled connection")
        }
    }

    /// Beyond `ORCH_SSE_MEMORY` in all, the streams furthest behind are cut first; a stream that
    /// reads keeps everything.
    @Test(arguments: TestBackend.all)
    func allStreamsTogetherStayWithinTheMemoryBound(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        // Only the bound on all streams together applies here.
        configuration.sseMemory = 8 << 20
        configuration.sseBufferBytes = 512 << 20
        configuration.sseBufferSize = 1_000_000
        try await EventStreamTests.withLiveServer(configuration, backend: backend) { api, port, parts in
            let token = try await api.adminToken()
            let reader = try await SSEConnection.open(port: port, headers: [("Authorization", "Bearer \(token)")])
            let stalled = try (0..<12).map { _ in try StalledSocket(port: port, path: "/sse/events", token: token) }
            #expect(await waitFor { parts.bus.subscriptionCount == 13 })
            let total = 800
            let monitor = Task {
                var peak = 0
                while !Task.isCancelled {
                    peak = max(peak, parts.bus.memory.held)
                    try? await Task.sleep(for: .milliseconds(1))
                }
                return peak
            }
            // Paced so that the reading stream keeps up: it is never the one furthest behind.
            try await Self.publish(parts, store: parts.store, count: total, size: 60_000, pause: .milliseconds(40))
            #expect(await waitFor { parts.bus.subscriptionCount == 1 }, "every stalled stream is cut")
            monitor.cancel()
            // The limit, plus at most one frame offered before the check that cut a stream.
            #expect(await monitor.value <= (8 << 20) + 61_000)
            #expect(await reader.waitUntil(timeout: .seconds(30)) { $0.filter { $0.id != nil }.count == total })
            for socket in stalled { #expect(socket.readsToEndOfStream()) }
            reader.close()
        }
    }
}

@Suite struct AllocatorTrimTests {
    @Test func trimsOnceAWaveOfClosuresEnds() {
        var trim = AllocatorTrim()
        let start = ContinuousClock.now
        // Closing in steps: no trim while they keep closing, one when they stop; a few closing
        // is not worth a trim.
        let steps = [(5000, 0), (3000, 1), (10, 2), (10, 3), (10, 4), (0, 5), (0, 6)]
        let trims = steps.map { streams, second in trim.observe(streams: streams, now: start + .seconds(second)) }
        #expect(trims == [false, false, false, true, false, false, false])
    }

    @Test func trimsDuringALongWave() {
        var trim = AllocatorTrim()
        let start = ContinuousClock.now
        var trims = [trim.observe(streams: 10_000, now: start)]
        for second in 1...12 { trims.append(trim.observe(streams: 10_000 - second * 500, now: start + .seconds(second))) }
        #expect(trims.contains(true))
    }
}
