import Foundation
import Hummingbird
import NIOCore
import OrchModels

/// Per-request state: the request id and, once authenticated, who is calling.
public struct OrchRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// `X-Request-ID` of this request: the caller's (sanitised) or a new `req-<uuid>`.
    public var requestID: String
    /// The authenticated caller; `nil` on public routes and before authentication.
    public var identity: Identity?
    /// The presented token once verified (by rate limiting), so route authentication need not
    /// verify it again.
    var verifiedToken: VerifiedToken?
    /// The peer's address, when the request came over a socket.
    public let remoteAddress: SocketAddress?
    /// The connection, for cutting a stream whose client stopped reading.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// Dates are written as `Timestamp` says (UTC, milliseconds).
    public var responseEncoder: JSONEncoder { Timestamp.makeEncoder() }
    /// Dates are read as `Timestamp` says.
    public var requestDecoder: JSONDecoder { Timestamp.makeDecoder() }
}

/// Who is calling: the user behind a verified token.
public struct Identity: Sendable, Hashable {
    public var userID: String
    public var username: String
    /// The user's current role (read from the store, so a change applies at once).
    public var role: Role
    /// When the presented token expires.
    public var tokenExpiresAt: Date?
}
