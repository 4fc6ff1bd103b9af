import Foundation

/// The error envelope every failed request answers with.
///
/// ```json
/// {"error": {"code": "VALIDATION_ERROR", "message": "...", "details": {"field": "coreId"},
///            "request_id": "req-...", "timestamp": "2024-01-15T10:30:00Z"}}
/// ```
public struct ErrorBody: Codable, Sendable, Hashable {
    /// The envelope's content.
    public struct Content: Codable, Sendable, Hashable {
        /// A stable machine-readable code such as `INVALID_PARAMETER`.
        public var code: String
        /// A human-readable explanation.
        public var message: String
        /// Structured context, for example `field` and `issue`; may be empty.
        public var details: [String: JSONValue]
        /// The request's id, as echoed in the `X-Request-ID` header.
        public var requestID: String
        /// When the error was produced.
        public var timestamp: Date

        public init(code: String, message: String, details: [String: JSONValue], requestID: String, timestamp: Date) {
            self.code = code
            self.message = message
            self.details = details
            self.requestID = requestID
            self.timestamp = timestamp
        }

        enum CodingKeys: String, CodingKey {
            case code, message, details
            case requestID = "request_id"
            case timestamp
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.code = try container.decode(String.self, forKey: .code)
            self.message = try container.decode(String.self, forKey: .message)
            self.details = try container.decodeIfPresent([String: JSONValue].self, forKey: .details) ?? [:]
            self.requestID = try container.decode(String.self, forKey: .requestID)
            self.timestamp = try container.decode(Date.self, forKey: .timestamp)
        }
    }

    public var error: Content

    public init(error: Content) {
        self.error = error
    }
}
