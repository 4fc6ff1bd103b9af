import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `orch bench memory`: the server's resident set idle, holding many idle SSE connections, and
/// feeding streams that never read large events (then again after they closed).
///
/// The streams are plain blocking sockets opened by this process (an HTTP client pool would
/// spend more memory and time than the server does): each sends one `GET /sse/events`, reads
/// the response head and then stays silent. Needs a started server (no `--url`).
struct BenchMemory: BenchScenario {
    static let configuration = CommandConfiguration(
        commandName: "memory", abstract: "Server resident memory idle and with many idle SSE connections.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Idle SSE connections to hold.") var streams = 10_000
    @Option(help: "SSE connections that never read, fed large events.") var stalledStreams = 5_000
    @Option(help: "Large events written while the stalled streams are open.") var largeEvents = 100
    @Option(help: "Bytes of each large event.") var eventBytes = 60_000

    var connectionsNeeded: Int { 4 }

    func measure(_ bench: BenchContext) async throws {
        let idle = try await measureIdle(bench)
        try await measureStreams(bench, idle: idle)
        try await measureStalledStreams(bench)
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

    /// The resident set before, while and after `stalledStreams` streams that never read are
    /// fed `largeEvents` progress events of `eventBytes` each (`ORCH_SSE_BUFFER_BYTES` and
    /// `ORCH_SSE_MEMORY` bound what they may hold; the allocator is trimmed after they close).
    func measureStalledStreams(_ bench: BenchContext) async throws {
        guard let url = URL(string: bench.server.baseURL), let port = url.port else { throw BenchError("bad server URL") }
        try await Task.sleep(for: .seconds(3))
        let before = bench.server.residentKiB() ?? 0
        let dispatched = try await bench.http.send(.POST, "/dispatch", body: #"{"coreId":"bench-memory"}"#)
        guard dispatched.status == 202,
            let taskID = try JSONSerialization.jsonObject(with: Data(buffer: dispatched.body)) as? [String: Any],
            let id = taskID["task_id"] as? String
        else { throw BenchError("dispatch failed: \(String(buffer: dispatched.body))") }
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        let request = Array("GET /sse/events?task_id=\(id) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(bench.http.token ?? "")\r\n\r\n".utf8)
        for _ in 0..<stalledStreams {
            sockets.append(try Self.openStream(port: UInt16(port), request: request, receiveBuffer: 4096))
        }
        let padding = String(repeating: "p", count: eventBytes)
        var peak = bench.server.residentKiB() ?? 0
        for step in 0..<largeEvents {
            let body = #"{"status":"running","progress":\#(step % 100),"metadata":{"pad":"\#(padding)"}}"#
            let answer = try await bench.http.send(.PUT, "/jobs/\(id)/status", body: body)
            guard answer.status == 200 else { throw BenchError("progress update failed: \(String(buffer: answer.body))") }
            if step % 10 == 0 { peak = max(peak, bench.server.residentKiB() ?? 0) }
        }
        try await Task.sleep(for: .seconds(1))
        peak = max(peak, bench.server.residentKiB() ?? 0)
        for socket in sockets { close(socket) }
        sockets = []
        try await Task.sleep(for: .seconds(4))
        let after = bench.server.residentKiB() ?? 0
        let scenario = "memory, \(stalledStreams) stalled SSE streams, \(largeEvents) events of \(eventBytes / 1000) KB"
        bench.report.add(scenario, "resident before", Double(before) / 1024, "MiB")
        bench.report.add(scenario, "resident peak", Double(peak) / 1024, "MiB")
        bench.report.add(scenario, "resident after they closed", Double(after) / 1024, "MiB")
        bench.report.add(scenario, "after / before", Double(after) / Double(max(1, before)), "x", target: "<= 2")
    }

    /// A connected socket whose request was answered with a 200 head; with `receiveBuffer` its
    /// kernel receive buffer is made that small (a client that will not read).
    static func openStream(port: UInt16, request: [UInt8], receiveBuffer: Int32? = nil) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket() failed: errno \(errno) (raise `ulimit -n`)") }
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
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
