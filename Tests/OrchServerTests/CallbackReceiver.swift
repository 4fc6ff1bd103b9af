import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A real HTTP receiver for callbacks, on a free local port: answers each POST with the next
/// status of `statuses` (the last one repeats) and keeps what it received.
final class CallbackReceiver: Sendable {
    struct Received: Sendable {
        var body: [UInt8]
        var signature: String?
    }

    private let state = Mutex<(received: [Received], port: Int)>(([], 0))
    private let statuses: [Int]
    private let task = Mutex<Task<Void, any Error>?>(nil)

    init(statuses: [Int]) {
        self.statuses = statuses
    }

    var port: Int { state.withLock { $0.port } }
    var received: [Received] { state.withLock { $0.received } }

    /// Starts listening on a free port; returns once the port is known.
    func start() async throws {
        try await startOn(port: 0)
    }

    /// Starts listening on `port` (0: any free one); returns once the port is known.
    func startOn(port requested: Int) async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let index = self.state.withLock { state -> Int in
                state.received.append(Received(body: Array(body.readableBytesView), signature: request.headers[.init("X-Signature")!]))
                return state.received.count - 1
            }
            let status = self.statuses[min(index, self.statuses.count - 1)]
            // A redirect points back here: a client that followed it would post again.
            let headers: HTTPFields = (300..<400).contains(status) ? [.location: "/hook"] : [:]
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: requested)),
            onServerRunning: { channel in self.state.withLock { $0.port = channel.localAddress?.port ?? 0 } }, logger: logger)
        let running = Task { try await app.run() }
        task.withLock { $0 = running }
        let deadline = ContinuousClock.now + .seconds(20)
        while port == 0 {
            guard ContinuousClock.now < deadline else {
                running.cancel()
                throw ServerProcessError(message: "the callback receiver did not start on port \(requested)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }

    /// Waits until `count` requests arrived.
    func waitFor(_ count: Int, timeout: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if received.count >= count { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return received.count >= count
    }
}
