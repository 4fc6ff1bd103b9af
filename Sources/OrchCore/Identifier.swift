import Foundation

/// Makes the prefixed identifiers the API uses (`task-<uuid>`, `user-<uuid>`, `req-<uuid>`, ...).
///
/// The UUIDs are version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. They
/// look like any UUID, are as unique, and sort by creation time, so a new row's id lands at the
/// end of the store's id index instead of on a random page of it: with a million tasks stored,
/// random ids made every dispatch dirty (and write to the WAL) one more page.
public enum Identifier {
    /// `<prefix>-<lowercase UUIDv7>`.
    public static func make(_ prefix: String, now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - index))) }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: high & 0x0F)
        bytes[7] = UInt8(truncatingIfNeeded: high >> 8)
        bytes[8] = 0x80 | UInt8(truncatingIfNeeded: (high >> 16) & 0x3F)
        for index in 9..<16 { bytes[index] = UInt8(truncatingIfNeeded: low >> (8 * (index - 9))) }
        let hex = bytes.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }
        let groups = [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }
        return prefix + "-" + groups.joined(separator: "-")
    }
}
