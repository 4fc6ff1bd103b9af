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
        // 48 bits of milliseconds, version 7, 12 random bits; variant 0b10, 62 random bits.
        let words = (millis << 16 | 0x7000 | (high & 0x0FFF), 0x8000_0000_0000_0000 | (low & 0x3FFF_FFFF_FFFF_FFFF))
        let hexDigits: StaticString = "0123456789abcdef"
        let text = String(unsafeUninitializedCapacity: prefix.utf8.count + 37) { buffer in
            var index = 0
            for byte in prefix.utf8 {
                buffer[index] = byte
                index += 1
            }
            buffer[index] = UInt8(ascii: "-")
            index += 1
            // 32 hex digits, dashes after digits 8, 12, 16 and 20.
            for digit in 0..<32 {
                if digit == 8 || digit == 12 || digit == 16 || digit == 20 {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
                let word = digit < 16 ? words.0 : words.1
                let nibble = Int((word >> UInt64(60 - 4 * (digit % 16))) & 0xF)
                buffer[index] = hexDigits.withUTF8Buffer { $0[nibble] }
                index += 1
            }
            return index
        }
        return text
    }
}
