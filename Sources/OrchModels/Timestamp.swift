import Foundation

/// How ORCH-Next writes and reads timestamps on the wire.
///
/// Written as ISO 8601 in UTC with milliseconds (`2024-01-15T10:30:00.123Z`); read with or
/// without fractional seconds and with any UTC offset, so the reference's examples
/// (`2024-01-15T10:30:00Z`) decode as well.
public enum Timestamp {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// Formats `date` as `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC, rounded to the millisecond (the
    /// same rounding the stores use, so a value reads back exactly as it was written).
    public static func format(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = millis.quotientAndRemainder(dividingBy: 1000)
        let adjusted = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let base = withoutFraction.format(Date(timeIntervalSince1970: Double(adjusted.0)))
        let digits = String(adjusted.1)
        return base.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Parses an ISO 8601 timestamp; `nil` when `text` is not one.
    public static func parse(_ text: String) -> Date? {
        if let date = try? withFraction.parse(text) { return date }
        if let date = try? withoutFraction.parse(text) { return date }
        return nil
    }

    /// A JSON encoder that writes dates in this format.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A JSON decoder that reads dates in this format.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected an ISO 8601 timestamp")
            }
            return date
        }
        return decoder
    }
}
