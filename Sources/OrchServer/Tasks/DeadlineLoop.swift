import Foundation
import Logging
import ServiceLifecycle

/// The loop of the services that act on deadlines (task leases and timeouts, lock expiry):
/// sweep, then sleep until the next deadline the sweep reports, at most `maximumSleep` (so a
/// deadline set while sleeping, never shorter than 1 s, is not missed by more than that), until
/// graceful shutdown.
enum DeadlineLoop {
    static func run(
        _ name: String, maximumSleep: Duration = .seconds(1), logger: Logger,
        sweep: () async throws -> Date?
    ) async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var pause = maximumSleep
            do {
                if let next = try await sweep() {
                    let seconds = max(0, next.timeIntervalSinceNow)
                    pause = min(pause, .milliseconds(Int64(seconds * 1000) + 1))
                }
            } catch {
                logger.error("\(name): sweep failed", metadata: ["error": "\(error)"])
            }
            let sleep = pause
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: sleep) }
            } catch {
                return
            }
        }
    }
}
