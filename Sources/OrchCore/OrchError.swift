import Foundation
import OrchModels

/// The one error type that reaches clients.
///
/// Every failure a client can cause or see is an `OrchError`; the server turns it into the error
/// envelope in exactly one place. Anything else that escapes a handler is logged and answered as
/// a bare `INTERNAL_ERROR` so that nothing internal leaks.
///
/// The codes are the reference's. Statuses the reference has no code for use the closest one:
/// 405 answers `RESOURCE_NOT_FOUND` (no such route for that method) and 413 answers
/// `VALIDATION_ERROR`, each with `details` saying more.
public struct OrchError: Error, Sendable, Hashable {
    /// A stable, machine-readable error code.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let authenticationRequired = Code(rawValue: "AUTHENTICATION_REQUIRED")
        public static let invalidToken = Code(rawValue: "INVALID_TOKEN")
        public static let insufficientPermissions = Code(rawValue: "INSUFFICIENT_PERMISSIONS")
        public static let validationError = Code(rawValue: "VALIDATION_ERROR")
        public static let invalidParameter = Code(rawValue: "INVALID_PARAMETER")
        public static let missingParameter = Code(rawValue: "MISSING_PARAMETER")
        public static let resourceNotFound = Code(rawValue: "RESOURCE_NOT_FOUND")
        public static let resourceConflict = Code(rawValue: "RESOURCE_CONFLICT")
        public static let resourceLocked = Code(rawValue: "RESOURCE_LOCKED")
        public static let internalError = Code(rawValue: "INTERNAL_ERROR")
        public static let serviceUnavailable = Code(rawValue: "SERVICE_UNAVAILABLE")
        public static let rateLimitExceeded = Code(rawValue: "RATE_LIMIT_EXCEEDED")
        public static let timeout = Code(rawValue: "TIMEOUT")

        /// Every code the server answers with.
        public static let allCases: [Code] = [
            .authenticationRequired, .invalidToken, .insufficientPermissions, .validationError, .invalidParameter,
            .missingParameter, .resourceNotFound, .resourceConflict, .resourceLocked, .internalError,
            .serviceUnavailable, .rateLimitExceeded, .timeout,
        ]
    }

    public var code: Code
    /// The HTTP status code to answer with.
    public var status: Int
    public var message: String
    public var details: [String: JSONValue]
    /// Extra response headers, such as `Allow` or `Retry-After`.
    public var headers: [String: String]

    public init(
        code: Code, status: Int, message: String, details: [String: JSONValue] = [:], headers: [String: String] = [:]
    ) {
        self.code = code
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers
    }
}

extension OrchError {
    /// 400 `VALIDATION_ERROR`: the request as a whole is malformed (for example not JSON).
    public static func validation(_ message: String, details: [String: JSONValue] = [:]) -> OrchError {
        OrchError(code: .validationError, status: 400, message: message, details: details)
    }

    /// 400 `MISSING_PARAMETER` naming the missing `field`.
    public static func missingParameter(_ field: String) -> OrchError {
        OrchError(
            code: .missingParameter, status: 400, message: "Missing required parameter '\(field)'",
            details: ["field": .string(field), "issue": "Field is required"])
    }

    /// 400 `INVALID_PARAMETER` naming the bad `field` and what is wrong with it.
    public static func invalidParameter(_ field: String, _ issue: String) -> OrchError {
        OrchError(
            code: .invalidParameter, status: 400, message: "Invalid parameter '\(field)': \(issue)",
            details: ["field": .string(field), "issue": .string(issue)])
    }

    /// 401 `AUTHENTICATION_REQUIRED`: no credentials, or a failed login.
    public static func authenticationRequired(_ message: String = "Authentication required") -> OrchError {
        OrchError(
            code: .authenticationRequired, status: 401, message: message, headers: ["WWW-Authenticate": "Bearer"])
    }

    /// 401 `INVALID_TOKEN`: a token that is malformed, forged, expired or no longer valid.
    public static func invalidToken(_ message: String = "Token is invalid or expired") -> OrchError {
        OrchError(
            code: .invalidToken, status: 401, message: message,
            headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
    }

    /// 403 `INSUFFICIENT_PERMISSIONS` for a reason other than the role's rank.
    public static func forbidden(_ message: String, details: [String: JSONValue] = [:]) -> OrchError {
        OrchError(code: .insufficientPermissions, status: 403, message: message, details: details)
    }

    /// 408 `TIMEOUT`: something did not happen (or arrive) in time.
    public static func timeout(_ message: String, details: [String: JSONValue] = [:]) -> OrchError {
        OrchError(code: .timeout, status: 408, message: message, details: details)
    }

    /// 409 `RESOURCE_LOCKED`: `owner` holds `resource` until `expiresAt`.
    public static func locked(resource: String, owner: String, expiresAt: Date) -> OrchError {
        OrchError(
            code: .resourceLocked, status: 409, message: "Resource \(resource) is locked",
            details: [
                "resource": .string(resource), "owner": .string(owner), "expires_at": .string(Timestamp.format(expiresAt)),
            ])
    }

    /// 429 `RATE_LIMIT_EXCEEDED` with `Retry-After` (whole seconds, at least 1) and `details`
    /// (`retry_after` added).
    public static func rateLimited(
        _ message: String, retryAfter: Int, details: [String: JSONValue] = [:], headers: [String: String] = [:]
    ) -> OrchError {
        let seconds = max(1, retryAfter)
        return OrchError(
            code: .rateLimitExceeded, status: 429, message: message,
            details: details.merging(["retry_after": .int(Int64(seconds))]) { $1 },
            headers: headers.merging(["Retry-After": String(seconds)]) { $1 })
    }

    /// 431 for a request line and headers over `limit` bytes.
    public static func headersTooLarge(limit: Int) -> OrchError {
        OrchError(
            code: .validationError, status: 431, message: "The request line and headers exceed \(limit) bytes",
            details: ["limit": .int(Int64(limit))])
    }

    /// 501 for a request method the server does not know.
    public static let unknownMethod = OrchError(
        code: .validationError, status: 501, message: "The request method is not implemented by this server",
        details: ["issue": "unknown method"])

    /// A 4xx the HTTP layer answered with (`VALIDATION_ERROR` and the status's reason phrase).
    public static func clientError(status: Int, message: String) -> OrchError {
        OrchError(code: .validationError, status: status, message: message)
    }

    /// 403 `INSUFFICIENT_PERMISSIONS`.
    public static func insufficientPermissions(required: Role, actual: Role) -> OrchError {
        OrchError(
            code: .insufficientPermissions, status: 403,
            message: "This action needs the \(required.rawValue) role",
            details: ["required_role": .string(required.rawValue), "role": .string(actual.rawValue)])
    }

    /// 404 `RESOURCE_NOT_FOUND`.
    public static func notFound(_ message: String, details: [String: JSONValue] = [:]) -> OrchError {
        OrchError(code: .resourceNotFound, status: 404, message: message, details: details)
    }

    /// 404 for the task `id`.
    public static func taskNotFound(_ id: String) -> OrchError {
        notFound("Task \(id) not found", details: ["task_id": .string(id)])
    }

    /// 405 for a path that exists with other methods; `Allow` lists them.
    public static func methodNotAllowed(method: String, path: String, allowed: [String]) -> OrchError {
        OrchError(
            code: .resourceNotFound, status: 405, message: "Method \(method) is not allowed on \(path)",
            details: ["method": .string(method), "allowed": .array(allowed.map { .string($0) })],
            headers: ["Allow": allowed.joined(separator: ", ")])
    }

    /// 409 `RESOURCE_CONFLICT`.
    public static func conflict(_ message: String, details: [String: JSONValue] = [:]) -> OrchError {
        OrchError(code: .resourceConflict, status: 409, message: message, details: details)
    }

    /// 413 for a body over `limit` bytes.
    public static func payloadTooLarge(limit: Int) -> OrchError {
        OrchError(
            code: .validationError, status: 413, message: "Request body is larger than \(limit) bytes",
            details: ["limit": .int(Int64(limit))])
    }

    /// 500 `INTERNAL_ERROR`, deliberately without detail.
    public static let internalError = OrchError(
        code: .internalError, status: 500, message: "Internal server error")

    /// 503 `SERVICE_UNAVAILABLE`, with `Retry-After` when `retryAfter` (seconds) is given.
    public static func serviceUnavailable(
        _ message: String, details: [String: JSONValue] = [:], retryAfter: Int? = nil
    ) -> OrchError {
        OrchError(
            code: .serviceUnavailable, status: 503, message: message, details: details,
            headers: retryAfter.map { ["Retry-After": String($0)] } ?? [:])
    }
}

extension OrchError {
    /// This error about one element of a list, `prefix` naming it (`tasks[3]`): a
    /// `details.field` becomes `prefix.field` (also in the message), and without a field the
    /// element itself is named as the field.
    public func located(in prefix: String) -> OrchError {
        var error = self
        if case .string(let field)? = details["field"] {
            let located = "\(prefix).\(field)"
            error.details["field"] = .string(located)
            error.message = message.replacingOccurrences(of: "'\(field)'", with: "'\(located)'")
        } else {
            error.details["field"] = .string(prefix)
            error.message = "\(prefix): \(message)"
        }
        return error
    }
}
