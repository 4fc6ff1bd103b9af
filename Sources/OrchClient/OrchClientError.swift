import Foundation
import OrchModels

/// An error answer from an ORCH-Next server, or a response the client could not understand.
///
/// Carries the HTTP status and, when the server sent one, the reference's error envelope
/// (`code`, `message`, `details`, `request_id`).
public struct OrchClientError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status code.
    public var status: Int
    /// The envelope's content; `nil` when the body was not an error envelope.
    public var body: ErrorBody.Content?
    /// Seconds to wait before retrying, from `Retry-After` (set on 429 and some 503s).
    public var retryAfter: Int?

    /// The envelope's `code`, e.g. `RESOURCE_NOT_FOUND`; `HTTP_<status>` without an envelope.
    public var code: String { body?.code ?? "HTTP_\(status)" }
    /// The server's message, or a generic one.
    public var message: String { body?.message ?? "HTTP status \(status)" }
    /// The request id to quote when reporting a problem.
    public var requestID: String? { body?.requestID }

    /// Reads an error from a response's status, `Retry-After` header value and body.
    public init(status: Int, retryAfter: String? = nil, body: Data) {
        self.status = status
        self.body = try? Timestamp.makeDecoder().decode(ErrorBody.self, from: body).error
        self.retryAfter = retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// `CODE: message (request id)`.
    public var description: String {
        let id = requestID.map { " (request \($0))" } ?? ""
        return "\(code): \(message)\(id)"
    }
}
