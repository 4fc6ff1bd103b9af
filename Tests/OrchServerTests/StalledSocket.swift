import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client that sends one request and then does not read: a stalled subscriber. Its
/// receive buffer is made small so the server's writes back up quickly.
final class StalledSocket: @unchecked Sendable {
    let descriptor: Int32

    convenience init(port: Int, path: String, token: String) throws {
        try self.init(port: port, rawRequest: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
    }

    /// Connects and sends `rawRequest` as it is.
    init(port: Int, rawRequest request: String) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 4096
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
    }

    /// Reads everything the server sent; true when the server closed the connection (end of
    /// stream or reset) within the timeout.
    func readsToEndOfStream(timeout: TimeInterval = 10) -> Bool {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Closes the connection from the client's side (a FIN, as a client that gives up sends).
    func disconnect() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    deinit { close(descriptor) }
}
