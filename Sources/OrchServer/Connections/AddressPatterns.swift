import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A list of IP addresses and CIDR ranges (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`), such as
/// `ORCH_TRUSTED_PROXIES`.
public struct AddressPatterns: Sendable, Hashable, CustomStringConvertible {
    struct Range: Sendable, Hashable {
        /// 4 or 16 bytes.
        let network: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == network.count else { return false }
            var bits = prefixLength
            for index in network.indices where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(0xFF << (8 - bits))
                if address[index] & mask != network[index] & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    let ranges: [Range]
    public let description: String

    public init() {
        ranges = []
        description = ""
    }

    /// Parses a comma-separated list; `nil` when an entry is neither an address nor a range.
    public init?(parsing text: String) {
        var ranges: [Range] = []
        let entries = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard let bytes = Self.bytes(of: String(parts[0])) else { return nil }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let length = Int(parts[1]), (0...bytes.count * 8).contains(length) else { return nil }
                prefix = length
            }
            ranges.append(Range(network: bytes, prefixLength: prefix))
        }
        self.ranges = ranges
        description = entries.joined(separator: ",")
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Whether `address` (textual IPv4 or IPv6) is in one of the ranges. An IPv4-mapped IPv6
    /// address (`::ffff:10.0.0.1`) matches as its IPv4 address.
    public func contains(_ address: String) -> Bool {
        guard !ranges.isEmpty, var bytes = Self.bytes(of: address) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The client behind `peer`: `peer` itself unless it is in these ranges (a trusted proxy);
    /// then the right-most `X-Forwarded-For` address (over every given header line) that is not
    /// a trusted proxy, since each proxy appends the address it received from. Entries that are
    /// not IP addresses end the walk; with none left the peer stands.
    public func clientAddress(peer: String, forwardedFor headers: [String]) -> String {
        guard !headers.isEmpty, contains(peer) else { return peer }
        let hops = headers.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard Self.bytes(of: hop) != nil else { break }
            if !contains(hop) { return hop }
        }
        return peer
    }

    /// The address's bytes: 4 for IPv4, 16 for IPv6; `nil` when it is neither.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
