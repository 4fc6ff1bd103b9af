import Foundation
import Logging
import OrchModels
import OrchStore
import ServiceLifecycle

/// Once a second: sends heartbeats to streams idle for the heartbeat interval and closes streams
/// whose token expired. Every heartbeat interval it also re-checks each streaming user, closing
/// the streams of users who were deactivated (also on other nodes; there ``ClusterSync`` does it
/// as soon as the change is heard) or lost the viewer role, and of API tokens that were revoked. It also trims the allocator after many streams closed
/// (``AllocatorTrim``).
struct EventStreamTicker: Service {
    let bus: EventBus
    let store: any Store
    /// Seconds between heartbeats (`ORCH_SSE_HEARTBEAT`).
    let heartbeatInterval: Int
    let logger: Logger

    func run() async throws {
        var sinceUserCheck = 0
        var trim = AllocatorTrim()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                break
            }
            let now = Date()
            bus.closeSubscriptions(.expired) { subscription in
                subscription.expiresAt.map { $0 <= now } ?? false
            }
            for subscription in bus.allSubscriptions() {
                subscription.heartbeatIfIdle(interval: Int64(heartbeatInterval) * 1000)
            }
            trim.observe(streams: bus.subscriptionCount)
            sinceUserCheck += 1
            if sinceUserCheck >= heartbeatInterval {
                sinceUserCheck = 0
                await checkUsers()
            }
        }
        bus.closeSubscriptions(.shutdown) { _ in true }
    }

    func checkUsers() async {
        let userIDs = Set(bus.allSubscriptions().compactMap(\.userID))
        for userID in userIDs {
            do {
                bus.recheck(userID: userID, against: try await store.user(id: userID))
            } catch {
                logger.warning("event streams: user check failed", metadata: ["error": "\(error)"])
                return
            }
        }
        let tokenIDs = Set(bus.allSubscriptions().compactMap(\.apiTokenID))
        for tokenID in tokenIDs {
            guard let token = try? await store.apiToken(id: tokenID) else { continue }
            if !token.isUsable(at: Date()) { bus.closeSubscriptions(.revoked) { $0.apiTokenID == tokenID } }
        }
    }
}
