import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a callback may not go by default: the server's own loopback, private networks
/// (RFC 1918, unique-local IPv6), link-local addresses (169.254.169.254 is the cloud metadata
/// service), carrier-grade NAT (100.64.0.0/10), unspecified, multicast and reserved addresses.
/// Any operator can set `metadata.callback_url`; without this a task could make the server
/// POST into the network it runs in. A host named in `ORCH_CALLBACK_ALLOWED_HOSTS` is exempt.
public enum CallbackAddress {
    /// Whether `bytes` (4 for IPv4, 16 for IPv6) is an address callbacks may not reach. An
    /// IPv4-mapped or IPv4-compatible IPv6 address is judged as its IPv4 address.
    public static func isInternal(_ bytes: [UInt8]) -> Bool {
        switch bytes.count {
        case 4:
            let (a, b) = (bytes[0], bytes[1])
            return a == 0  // "this network", unspecified
                || a == 10 || a == 127  // private, loopback
                || (a == 100 && (64...127).contains(b))  // carrier-grade NAT
                || (a == 169 && b == 254)  // link-local, cloud metadata
                || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)  // private
                || (a == 192 && b == 0 && bytes[2] == 0)  // IETF protocol assignments
                || (a == 198 && (18...19).contains(b))  // benchmarking
                || a >= 224  // multicast, reserved, broadcast
        case 16:
            if bytes[0..<10].allSatisfy({ $0 == 0 }), (bytes[10] == 0xFF && bytes[11] == 0xFF) || (bytes[10] == 0 && bytes[11] == 0) {
                // ::ffff:a.b.c.d and ::a.b.c.d (which covers :: and ::1 as 0.0.0.0 and 0.0.0.1).
                return isInternal(Array(bytes[12...]))
            }
            return bytes[0] & 0xFE == 0xFC  // unique-local fc00::/7
                || (bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80)  // link-local fe80::/10
                || bytes[0] == 0xFF  // multicast
        default:
            return true
        }
    }

    /// The bytes of `host` when it is an IPv4 address in any form the resolver accepts
    /// (`127.0.0.1`, `127.1`, `2130706433`, `0x7f.0.0.1`) or a textual IPv6 address; `nil` for
    /// a name.
    public static func literal(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_aton(host, &v4) != 0 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The text of an address's bytes.
    public static func text(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return "?" }
        return String(cString: buffer)
    }

    /// `localhost` and names under it always mean the loopback (RFC 6761).
    public static func isLoopbackName(_ host: String) -> Bool {
        host == "localhost" || host.hasSuffix(".localhost")
    }

    /// Every address `host` resolves to (blocking: call it off the event loops), or the
    /// resolver's error.
    public static func resolve(_ host: String) -> Result<[[UInt8]], ResolutionError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, nil, &hints, &list)
        guard code == 0, let first = list else {
            return .failure(ResolutionError(message: String(cString: gai_strerror(code))))
        }
        defer { freeaddrinfo(first) }
        var addresses: [[UInt8]] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var value = v4.pointee.sin_addr
                        addresses.append(withUnsafeBytes(of: &value) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var value = v6.pointee.sin6_addr
                        addresses.append(withUnsafeBytes(of: &value) { Array($0) })
                    }
                default: break
                }
            }
            entry = current.pointee.ai_next
        }
        var unique: [[UInt8]] = []
        for address in addresses where !unique.contains(address) { unique.append(address) }
        return unique.isEmpty ? .failure(ResolutionError(message: "no address")) : .success(unique)
    }

    public struct ResolutionError: Error, Sendable {
        public let message: String
    }
}
