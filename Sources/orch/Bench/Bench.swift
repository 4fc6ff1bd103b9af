import ArgumentParser
import AsyncHTTPClient
import NIOCore

/// `orch bench`: measures a server. Without `--url` each benchmark starts its own
/// `orch serve` (release build recommended) on a temporary SQLite file with rate limits off.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure an ORCH-Next server.",
        subcommands: [BenchDispatch.self, BenchSSE.self, BenchLocks.self])
}

/// Options every benchmark shares.
struct BenchTarget: ParsableArguments {
    @Option(help: "Server to measure; default: start a fresh `orch serve` on a temporary database.")
    var url: String?
    @Option(help: "Admin username for --url.") var username = "admin"
    @Option(help: "Admin password for --url (ORCH_PASSWORD).") var password: String?
}

extension BenchTarget {
    /// The server to measure (started here unless `--url`), a client with room for
    /// `connections` connections, and an admin session on it. Stop the server and shut the
    /// client down when done.
    func connect(connections: Int, readTimeout: TimeAmount? = nil) async throws -> (BenchServer, HTTPClient, BenchHTTP) {
        let server = try url.map { BenchServer(url: $0) } ?? BenchServer()
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections + 8
        if let readTimeout { configuration.timeout.read = readTimeout }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let token = try await BenchHTTP(client: client, baseURL: server.baseURL).login(self)
            return (server, client, BenchHTTP(client: client, baseURL: server.baseURL, token: token))
        } catch {
            server.stop()
            try? await client.shutdown()
            throw error
        }
    }
}
