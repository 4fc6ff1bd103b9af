import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `orch bench memory`: the server's resident set idle, and holding many idle SSE connections.
///
/// The idle streams are plain blocking sockets opened by this process (an HTTP client pool
/// would spend more memory and time than the server does): each sends one `GET /sse/events`,
/// reads the response head and then stays silent. Needs a started server (no `--url`).
struct BenchMemory: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "memory", abstract: "Server resident memory idle and with many idle SSE connections.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Idle SSE connections to hold.") var streams = 10_000

    var connectionsNeeded: Int { 4 }

    func measure(_ bench: BenchContext) async throws {
        let idle = try await measureIdle(bench)
        try await measureStreams(bench, idle: idle)
    }

    /// The resident set of the server before anything ran; KiB.
    func measureIdle(_ bench: BenchContext) async throws -> Int {
        guard bench.server.process != nil else { throw BenchError("memory needs a server started by the bench (no --url)") }
        try await Task.sleep(for: .seconds(2))
        let idle = bench.server.residentKiB() ?? 0
        bench.report.add("memory", "idle", Double(idle) / 1024, "MiB", target: "<= 40")
        return idle
    }

    /// The resident set while `streams` idle SSE connections are open (then closed).
    func measureStreams(_ bench: BenchContext, idle: Int) async throws {
        Self.raiseFileLimit(to: streams + 256)
        guard let url = URL(string: bench.server.baseURL), let port = url.port else { throw BenchError("bad server URL") }
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        let request = Array("GET /sse/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(bench.http.token ?? "")\r\n\r\n".utf8)
        for _ in 0..<streams {
            sockets.append(try Self.openStream(port: UInt16(port), request: request))
        }
        try await Task.sleep(for: .seconds(2))
        let held = bench.server.residentKiB() ?? 0
        let scenario = "memory, \(streams) idle SSE connections"
        bench.report.add(scenario, "resident", Double(held) / 1024, "MiB", target: "<= 400")
        bench.report.add(scenario, "per connection", Double(held - idle) / Double(streams), "KiB")
    }

    /// A connected socket whose request was answered with a 200 head.
    static func openStream(port: UInt16, request: [UInt8]) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket() failed: errno \(errno) (raise `ulimit -n`)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw BenchError("connect() failed: errno \(errno)")
        }
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else {
            close(descriptor)
            throw BenchError("send() failed")
        }
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !head.contains(13) || String(decoding: head, as: UTF8.self).range(of: "\r\n\r\n") == nil {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                close(descriptor)
                throw BenchError("the stream closed before its response head")
            }
            head += buffer[0..<count]
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200") else {
            close(descriptor)
            throw BenchError("stream refused: \(String(decoding: head.prefix(200), as: UTF8.self))")
        }
        return descriptor
    }

    /// Raises this process's open-file limit towards `wanted` (up to the hard limit).
    static func raiseFileLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = min(max(limit.rlim_cur, rlim_t(wanted)), limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
