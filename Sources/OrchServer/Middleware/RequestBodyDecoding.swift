import Foundation
import Hummingbird
import NIOCore
import OrchCore
import OrchModels

/// Reading JSON bodies with errors a client can act on.
enum RequestBodyDecoding {
    /// Bodies over 1 MiB are refused with 413.
    static let maximumBodySize = 1 << 20

    /// The JSON object `bytes` hold, in strict RFC 8259, or 400 `VALIDATION_ERROR`: Foundation's
    /// decoder accepts trailing commas and keeps the first of two equal keys, so request text is
    /// read by the project's own strict parser first.
    static func strictObject(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONValue(parsingUTF8: bytes)
        } catch let error as JSONValue.ParseError {
            if let key = error.duplicateKey {
                throw OrchError.validation(
                    "The JSON body gives the key '\(key)' more than once",
                    details: ["field": .string(key), "issue": "duplicate key", "offset": .int(Int64(error.offset))])
            }
            var details: [String: JSONValue] = ["offset": .int(Int64(error.offset))]
            var message = "Malformed JSON in request body at byte \(error.offset)"
            if let key = error.lastKey {
                details["after_key"] = .string(key)
                message += " (after the key '\(key)')"
            }
            throw OrchError.validation(message, details: details)
        }
        guard case .object(let object) = value else {
            throw OrchError.validation("The request body must be a JSON object")
        }
        if hasEscapedNUL(bytes) { throw OrchError.validation(nulMessage) }
        return object
    }

    static let nulMessage = "Text with a NUL character (U+0000) cannot be stored"

    /// Whether the JSON text `bytes` (already parsed, so valid) has a string with U+0000 in a
    /// key or a value. No text of the API may hold it: PostgreSQL's `text` and `jsonb` cannot,
    /// so both backends refuse it alike, before anything is stored. In valid JSON a NUL can
    /// only be the escape `\u0000`, and every backslash starts an escape.
    static func hasEscapedNUL(_ bytes: [UInt8]) -> Bool {
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            if index + 5 < bytes.count, bytes[index + 1] == UInt8(ascii: "u"),
                bytes[(index + 2)...(index + 5)].allSatisfy({ $0 == UInt8(ascii: "0") })
            {
                return true
            }
            index += 2
        }
        return false
    }
}

extension Request {
    /// Decodes the JSON body as `T`.
    ///
    /// Throws 413 for a body over 1 MiB; 400 `VALIDATION_ERROR` for an empty body, one that is
    /// not strict RFC 8259 JSON (a trailing comma, a key given twice: the error names the key)
    /// or not an object; 400 `MISSING_PARAMETER` with `details.field` for a missing (or null)
    /// required field; and 400 `INVALID_PARAMETER` with `details.field` for a value of the wrong
    /// type or out of range.
    func decodeJSON<T: Decodable>(
        as type: T.Type = T.self, maximumSize: Int = RequestBodyDecoding.maximumBodySize
    ) async throws -> T {
        let bytes = try await collectBody(maximumSize: maximumSize)
        guard !bytes.isEmpty else { throw OrchError.validation("A JSON request body is required") }
        _ = try RequestBodyDecoding.strictObject(bytes)
        do {
            return try Timestamp.decoder.decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw OrchError(decoding: error)
        }
    }
}

extension Request {
    /// The raw body, at most `maximumSize` bytes, 1 MiB unless a route says otherwise (413
    /// beyond, told by `Content-Length` or by counting).
    func collectBody(maximumSize: Int = RequestBodyDecoding.maximumBodySize) async throws -> [UInt8] {
        if let length = headers[.contentLength].flatMap(Int.init), length > maximumSize {
            throw OrchError.payloadTooLarge(limit: maximumSize)
        }
        do {
            let buffer = try await body.collect(upTo: maximumSize)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw OrchError.payloadTooLarge(limit: maximumSize)
        }
    }
}

extension OrchError {
    /// The client-facing error for a body that does not decode.
    ///
    /// Validation messages of the project's own types start with "must" and are passed on;
    /// other decoder messages are replaced, so no Swift type name reaches a client.
    init(decoding error: DecodingError) {
        func field(_ path: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = path + (last.map { [$0] } ?? [])
            return keys.reduce(into: "") { text, key in
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            self = .missingParameter(field(context.codingPath, key))
        case .valueNotFound(_, let context):
            self = .missingParameter(field(context.codingPath))
        case .typeMismatch(let type, let context):
            let name = field(context.codingPath)
            if name.isEmpty {
                self = .validation("The request body must be a JSON object")
            } else {
                self = .invalidParameter(name, "must be \(Self.jsonTypeName(type))")
            }
        case .dataCorrupted(let context):
            let name = field(context.codingPath)
            if name.isEmpty {
                self = .validation("Malformed JSON in request body")
            } else if context.debugDescription.hasPrefix("must") {
                self = .invalidParameter(name, context.debugDescription)
            } else {
                self = .invalidParameter(name, "has an invalid value")
            }
        @unknown default:
            self = .validation("Request validation failed")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default:
            String(describing: type).hasPrefix("Dictionary")
                ? "an object" : String(describing: type).hasPrefix("Array") ? "an array" : "of another type"
        }
    }
}
