import Foundation
import Hummingbird
import NIOCore
import OrchCore
import OrchModels
import Synchronization

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
    /// The client's IP address: the peer's, or (when the peer is a trusted proxy) the one
    /// `X-Forwarded-For` names. Set by the outermost middleware; `unknown` without a socket.
    public var clientAddress: String
    /// The connection, for cutting a stream whose client stopped reading.
    let channel: any Channel
    /// Facts learnt inside the router that the outer middleware logs (shared by every copy of
    /// this context).
    let trace = RequestTrace()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
        remoteAddress = source.channel.remoteAddress
        clientAddress = remoteAddress?.ipAddress ?? "unknown"
        channel = source.channel
    }

    /// Dates are written as `Timestamp` says (UTC, milliseconds).
    public var responseEncoder: JSONEncoder { Timestamp.encoder }
    /// Dates are read as `Timestamp` says.
    public var requestDecoder: JSONDecoder { Timestamp.decoder }
}

/// Who is calling: the user behind a verified token.
public struct Identity: Sendable, Hashable {
    public var userID: String
    public var username: String
    /// The user's current role (read from the store, so a change applies at once).
    public var role: Role
    /// When the presented token expires (`nil` for an API token without expiry).
    public var tokenExpiresAt: Date?
    /// The API token the caller presented; `nil` for a login token.
    public var apiTokenID: String?
    /// The user's session generation the login token was issued in; `nil` for an API token.
    public var sessionGeneration: Int?

    public init(
        userID: String, username: String, role: Role, tokenExpiresAt: Date?, apiTokenID: String? = nil,
        sessionGeneration: Int? = nil
    ) {
        self.userID = userID
        self.username = username
        self.role = role
        self.tokenExpiresAt = tokenExpiresAt
        self.apiTokenID = apiTokenID
        self.sessionGeneration = sessionGeneration
    }
}

/// What the outer middleware learns only after routing: who the caller turned out to be.
final class RequestTrace: Sendable {
    private let state = Mutex<String?>(nil)

    /// The authenticated caller's username.
    var user: String? {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

extension OrchRequestContext {
    /// The path parameter `name`, percent-decoded (`/cores/a%3Ab/claim` names core `a:b`) and
    /// normalized to NFC like every identifier; 400 when it does not decode.
    func pathParameter(_ name: String) throws -> String {
        let raw = try parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw OrchError.invalidParameter(name, "is not a valid percent-encoded path segment")
        }
        return decoded.nfc
    }
}
