import Foundation

/// How long a client may take and how many connections it may hold (the README's "Limits and
/// timeouts" section lists each with its setting).
public struct ConnectionLimits: Sendable, Hashable {
    /// From a connection's first byte (or its opening) to the end of its request head.
    /// `ORCH_HEADER_TIMEOUT`, default 10 s.
    public var headerTimeout: Duration = .seconds(10)
    /// Longest pause between two reads of a request body. `ORCH_BODY_TIMEOUT`, default 30 s.
    public var bodyTimeout: Duration = .seconds(30)
    /// Longest a kept-alive connection may wait for its next request. Streams and long polls
    /// are answering, not idle. `ORCH_IDLE_TIMEOUT`, default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// After an error answer, how long the rest of a refused request is read and dropped before
    /// the socket is closed (so the client sees the answer instead of a reset).
    public var lingerTimeout: Duration = .seconds(2)
    /// Open connections at most; more are refused at accept. `nil` derives it from the
    /// descriptor limit (``defaultMaximumConnections(descriptorLimit:)``). `ORCH_MAX_CONNECTIONS`.
    public var maximumConnections: Int?
    /// Connections from one address that have not yet authenticated; 0 = no cap.
    /// `ORCH_MAX_ANONYMOUS_CONNECTIONS`, default 128.
    public var maximumAnonymousPerAddress: Int = 128
    /// The request line and headers together, bytes. `ORCH_MAX_HEADER_BYTES`, default 32 KiB.
    public var maximumHeaderBytes: Int = 32 * 1024
    /// Header fields in one request.
    public var maximumHeaderFields: Int = 100
    /// After SIGTERM, how long requests in flight may take before every connection is closed.
    /// `ORCH_SHUTDOWN_GRACE`, default 10 s.
    public var shutdownGrace: Duration = .seconds(10)

    public init() {}

    /// The connection cap for a process allowed `descriptorLimit` open files: a quarter of the
    /// descriptors (at least 64) stay free for the database, outgoing callbacks, logs and the
    /// runtime, and no more than 100,000 connections are taken.
    public static func defaultMaximumConnections(descriptorLimit: Int) -> Int {
        max(1, min(100_000, descriptorLimit - max(64, descriptorLimit / 4)))
    }

    /// The connection cap to use under `descriptorLimit`: the configured one, lowered when it
    /// would leave fewer than 64 descriptors free.
    public func effectiveMaximumConnections(descriptorLimit: Int) -> Int {
        let ceiling = max(1, descriptorLimit - 64)
        return min(maximumConnections ?? Self.defaultMaximumConnections(descriptorLimit: descriptorLimit), ceiling)
    }

    /// How often a connection's deadlines are checked at most: the shortest timeout.
    var checkInterval: Duration { min(headerTimeout, bodyTimeout, idleTimeout) }
}
