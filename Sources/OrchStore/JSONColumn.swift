import Foundation
import OrchModels

/// JSON stored in a text column (metadata, event data).
enum JSONColumn {
    static func encode(_ value: [String: JSONValue]) throws -> String {
        JSONValue.jsonText(value)
    }

    static func encodeValue(_ value: JSONValue) throws -> String {
        value.jsonText
    }

    static func decodeValue(_ text: String) throws -> JSONValue {
        try JSONValue(parsing: text)
    }

    static func decode(_ text: String) throws -> [String: JSONValue] {
        guard case .object(let object) = try JSONValue(parsing: text) else {
            throw JSONValue.ParseError(offset: 0)
        }
        return object
    }
}

extension Date {
    /// Milliseconds since 1970, the unit timestamps are stored in.
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(millis: Int64) {
        self.init(timeIntervalSince1970: Double(millis) / 1000)
    }

    /// The time as stored: rounded to the millisecond, as both backends keep timestamps.
    var stored: Date { Date(millis: millis) }
}
