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
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func decode(_ text: String) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8))
    }
}

extension Date {
    /// Milliseconds since 1970, the unit timestamps are stored in.
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(millis: Int64) {
        self.init(timeIntervalSince1970: Double(millis) / 1000)
    }
}
