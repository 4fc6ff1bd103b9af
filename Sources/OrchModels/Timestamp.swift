import Foundation

/// How ORCH-Next writes and reads timestamps on the wire.
///
/// Written as ISO 8601 in UTC with milliseconds (`2024-01-15T10:30:00.123Z`); read as any RFC
/// 3339 `date-time` (what OpenAPI's `format: date-time` means): with or without fractional
/// seconds, `Z` or any offset up to +-23:59, `T`/`t` and `Z`/`z` in either case, so the
/// reference's examples (`2024-01-15T10:30:00Z`) decode as well.
public enum Timestamp {
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

    /// Parses an RFC 3339 date-time (`2024-01-15T10:30:00Z`, `2024-01-15t10:30:00.5+02:00`);
    /// `nil` when `text` is not one or names a day that does not exist.
    public static func parse(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= chars.count else { return nil }
            var value = 0
            for char in chars[start..<(start + count)] {
                guard char >= 48, char <= 57 else { return nil }
                value = value * 10 + Int(char - 48)
            }
            return value
        }
        func char(_ index: Int) -> UInt8? { index < chars.count ? chars[index] : nil }
        guard let year = number(0, 4), char(4) == UInt8(ascii: "-"), let month = number(5, 2),
            char(7) == UInt8(ascii: "-"), let day = number(8, 2), char(10) == UInt8(ascii: "T") || char(10) == UInt8(ascii: "t"),
            let hour = number(11, 2), char(13) == UInt8(ascii: ":"), let minute = number(14, 2),
            char(16) == UInt8(ascii: ":"), let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), (1...daysInMonth(month, year: year)).contains(day), hour <= 23, minute <= 59,
            second <= 60
        else { return nil }
        var index = 19
        var fraction = 0.0
        if char(index) == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while let digit = char(index), digit >= 48, digit <= 57 {
                fraction += Double(digit - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        switch char(index) {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let offsetHours = number(index + 1, 2), char(index + 3) == UInt8(ascii: ":"),
                let offsetMinutes = number(index + 4, 2), offsetHours <= 23, offsetMinutes <= 59
            else { return nil }
            offset = (offsetHours * 60 + offsetMinutes) * 60 * (char(index) == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == chars.count else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// One encoder of ``makeEncoder()`` for every response: encoding does not change an
    /// encoder, so concurrent use is safe, and making one per response was measurable.
    public static let encoder = makeEncoder()
    /// One decoder of ``makeDecoder()`` for every request body.
    public static let decoder = makeDecoder()

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
