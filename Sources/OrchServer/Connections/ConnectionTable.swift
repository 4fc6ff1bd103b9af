import Logging
import NIOCore
import Synchronization

/// Every open client connection: who may connect, who is connected, and the end of them all at
/// shutdown.
///
/// - At most `maximumConnections` are open at once; one more is refused at accept (answered
///   503 and closed at once), so the process never runs out of descriptors however many
///   sockets a client opens, and keeps serving the connections it has.
/// - At most `maximumAnonymousPerAddress` connections from one address may be open without
///   having authenticated (a request on it presented a valid token). One address cannot take
///   every slot with sockets that never say who they are; trusted proxies are exempt.
/// - ``beginDrain(grace:)`` (at shutdown) closes every connection still open `grace` later.
final class ConnectionTable: Sendable {
    /// Why a connection was refused at accept.
    enum Refusal: String, Sendable {
        /// `maximumConnections` were open.
        case capacity
        /// The address had `maximumAnonymousPerAddress` unauthenticated connections open.
        case address
        /// The server is shutting down.
        case shutdown
    }

    private struct Entry {
        let channel: any Channel
        /// The peer's address while it counts as anonymous; `nil` once authenticated (or exempt).
        var anonymousAddress: String?
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var anonymousByAddress: [String: Int] = [:]
        var draining = false

        mutating func release(anonymous address: String) {
            let left = (anonymousByAddress[address] ?? 1) - 1
            anonymousByAddress[address] = left > 0 ? left : nil
        }
    }

    let maximumConnections: Int
    let maximumAnonymousPerAddress: Int
    private let trustedProxies: AddressPatterns
    private let state = Mutex(State())
    private let metrics: OrchMetrics?
    private let logger: Logger

    init(
        maximumConnections: Int, maximumAnonymousPerAddress: Int, trustedProxies: AddressPatterns = AddressPatterns(),
        metrics: OrchMetrics? = nil, logger: Logger
    ) {
        self.maximumConnections = maximumConnections
        self.maximumAnonymousPerAddress = maximumAnonymousPerAddress
        self.trustedProxies = trustedProxies
        self.metrics = metrics
        self.logger = logger
    }

    /// Registers a newly accepted connection, or says why it is refused.
    func admit(_ channel: any Channel) -> Refusal? {
        let address = channel.remoteAddress?.ipAddress
        let counted = address.flatMap { trustedProxies.contains($0) ? nil : $0 }
        let refusal = state.withLock { state -> Refusal? in
            if state.draining { return .shutdown }
            if state.entries.count >= maximumConnections { return .capacity }
            if let counted, maximumAnonymousPerAddress > 0 {
                let anonymous = state.anonymousByAddress[counted, default: 0]
                if anonymous >= maximumAnonymousPerAddress { return .address }
                state.anonymousByAddress[counted] = anonymous + 1
            }
            state.entries[ObjectIdentifier(channel)] = Entry(
                channel: channel, anonymousAddress: maximumAnonymousPerAddress > 0 ? counted : nil)
            return nil
        }
        if let refusal {
            metrics?.recordConnectionRefused(reason: refusal.rawValue)
        } else {
            metrics?.connectionsOpen.increment()
        }
        return refusal
    }

    /// Forgets a closed connection.
    func remove(_ channel: any Channel) {
        let removed = state.withLock { state -> Bool in
            guard let entry = state.entries.removeValue(forKey: ObjectIdentifier(channel)) else { return false }
            if let address = entry.anonymousAddress { state.release(anonymous: address) }
            return true
        }
        if removed { metrics?.connectionsOpen.decrement() }
    }

    /// A request on `channel` authenticated: it no longer counts against its address's cap.
    func markAuthenticated(_ channel: any Channel) {
        state.withLock { state in
            let key = ObjectIdentifier(channel)
            guard let address = state.entries[key]?.anonymousAddress else { return }
            state.entries[key]?.anonymousAddress = nil
            state.release(anonymous: address)
        }
    }

    /// Refuses new connections from now on, and closes every connection still open after
    /// `grace`. Only the first call acts.
    func beginDrain(grace: Duration, on eventLoop: any EventLoop) {
        let first = state.withLock { state -> Bool in
            defer { state.draining = true }
            return !state.draining
        }
        guard first else { return }
        eventLoop.scheduleTask(in: TimeAmount(grace)) {
            let left = self.state.withLock { state in state.entries.values.map(\.channel) }
            if !left.isEmpty {
                self.logger.notice(
                    "shutdown grace is over; closing the connections still open",
                    metadata: ["connections": "\(left.count)"])
            }
            for channel in left { channel.close(promise: nil) }
        }
    }
}
