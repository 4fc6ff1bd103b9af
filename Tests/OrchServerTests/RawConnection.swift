import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to the server, for what an HTTP client library will not do: send
/// half a request, send garbage, hold a socket open without a word, connect from another
/// loopback address.
final class RawConnection: @unchecked Sendable {
    let descriptor: Int32

    /// Connects to 127.0.0.1:`port`, from `source` (a loopback address such as `127.0.0.2`)
    /// when given. Throws when the connection cannot be made.
    init(port: Int, source: String? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        if let source {
            guard Self.withAddress(source, port: 0, { bind(descriptor, $0, $1) }) == 0 else {
                close(descriptor)
                throw POSIXError(.EADDRNOTAVAIL)
            }
        }
        guard Self.withAddress("127.0.0.1", port: port, { connect(descriptor, $0, $1) }) == 0 else {
            close(descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// Calls `body` with the IPv4 socket address of `host`:`port` and its length.
    private static func withAddress(
        _ host: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// Sends all of `bytes`; false when the server closed or reset the connection first.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// What the server sends until it closes the connection or `timeout` passes, and whether it
    /// closed (end of stream or reset).
    func readToEnd(timeout: TimeInterval = 10) -> (text: String, closed: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            setReceiveTimeout(max(0.05, deadline.timeIntervalSinceNow))
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 {
                if errno == ECONNRESET { return (String(decoding: received, as: UTF8.self), true) }
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return (String(decoding: received, as: UTF8.self), true)
            }
            received += buffer[0..<count]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    /// Reads until one whole response (head and a `Content-Length` body) has arrived, or
    /// `timeout` passes; the connection stays open.
    func readResponse(timeout: TimeInterval = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let text = String(decoding: received, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let head = text[..<headEnd.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count - text[..<headEnd.upperBound].utf8.count >= length { return text }
            }
            setReceiveTimeout(max(0.05, deadline.timeIntervalSinceNow))
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return nil }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return nil
            }
            received += buffer[0..<count]
        }
        return nil
    }

    /// ``readToEnd(timeout:)`` on a thread of its own: the reads block, and the test runner's
    /// few cooperative threads must stay free for everything else running meanwhile.
    func end(timeout: TimeInterval = 10) async -> (text: String, closed: Bool) {
        await offThePool { self.readToEnd(timeout: timeout) }
    }

    /// ``readResponse(timeout:)`` on a thread of its own.
    func response(timeout: TimeInterval = 10) async -> String? {
        await offThePool { self.readResponse(timeout: timeout) }
    }

    /// ``send(_:)`` on a thread of its own (a large send blocks until the server reads it).
    @discardableResult
    func sending(_ text: String) async -> Bool {
        await offThePool { self.send(text) }
    }

    private func setReceiveTimeout(_ seconds: TimeInterval) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }
}

extension String {
    /// The status code of an HTTP response text (`HTTP/1.1 431 ...`), or `nil`.
    var httpStatus: Int? {
        guard hasPrefix("HTTP/1.") else { return nil }
        return Int(split(separator: " ").dropFirst().first ?? "")
    }

    /// The body of an HTTP response text.
    var httpBody: String {
        guard let range = range(of: "\r\n\r\n") else { return "" }
        return String(self[range.upperBound...])
    }
}

/// Runs blocking `work` on a Dispatch thread, outside Swift concurrency's thread pool.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}

/// Descriptors a process has open now (`/proc/PID/fd`).
func openDescriptors(of pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}
