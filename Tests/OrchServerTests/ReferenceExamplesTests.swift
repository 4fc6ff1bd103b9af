import Foundation
import OrchModels
import Testing

/// Every JSON example of the API reference, read at run time, decodes with the OrchModels type
/// it shows; re-encoded, that type writes every key the example has (so no documented field is
/// dropped or renamed). A new example without a type here fails the test.
@Suite struct ReferenceExamplesTests {
    struct Example {
        var heading: String
        var label: String
        var json: String
    }

    /// The fenced `json` blocks with the `### heading` and `**Label**` they follow.
    static func examples() throws -> [Example] {
        var examples: [Example] = []
        var heading = ""
        var label = ""
        var block: [Substring]?
        for line in try ReferenceDocument.text().split(separator: "\n", omittingEmptySubsequences: false) {
            if block != nil {
                if line.trimmingCharacters(in: .whitespaces) == "```" {
                    examples.append(Example(heading: heading, label: label, json: block!.joined(separator: "\n")))
                    block = nil
                } else {
                    block?.append(line)
                }
            } else if line.hasPrefix("### ") {
                heading = String(line.dropFirst(4))
                label = ""
            } else if line.hasPrefix("**"), let end = line.dropFirst(2).firstIndex(of: "*") {
                label = String(line[line.index(line.startIndex, offsetBy: 2)..<end])
            } else if line.trimmingCharacters(in: .whitespaces) == "```json" {
                block = []
            }
        }
        return examples
    }

    /// Decodes `json` as `T`, and returns what `T` encodes back through the server's response
    /// writer (``JSONWriter``), which must say the same as Foundation's encoder.
    static func roundTrip<T: Codable>(_ type: T.Type, _ json: String) throws -> Any {
        let value = try Timestamp.makeDecoder().decode(T.self, from: Data(json.utf8))
        let written = Data(try JSONWriter().encode(value))
        let foundation = try Timestamp.makeEncoder().encode(value)
        #expect(
            try JSONDecoder().decode(JSONValue.self, from: written) == JSONDecoder().decode(JSONValue.self, from: foundation),
            "\(T.self)")
        return try JSONSerialization.jsonObject(with: written)
    }

    /// The type each example shows, by section and label.
    static let types: [String: @Sendable (String) throws -> Any] = [
        "Obtaining JWT Token/Request": { try roundTrip(LoginRequest.self, $0) },
        "Obtaining JWT Token/Response": { try roundTrip(LoginResponse.self, $0) },
        "Health Check/Response": { try roundTrip(HealthReport.self, $0) },
        "Dispatch Task/Request": { try roundTrip(DispatchRequest.self, $0) },
        "Dispatch Task/Response": { try roundTrip(DispatchResponse.self, $0) },
        "Get Job Events/Response": { try roundTrip(TaskEventList.self, $0) },
        "Update Job Status/Request": { try roundTrip(StatusUpdateRequest.self, $0) },
        "Update Job Status/Response": { try roundTrip(StatusUpdateResponse.self, $0) },
        "List Tasks/Response": { try roundTrip(TaskList.self, $0) },
        "Receive Webhook/Response": { try roundTrip(WebhookReceipt.self, $0) },
        "List Locks/Response": { try roundTrip(LockList.self, $0) },
        "Acquire Lock/Request": { try roundTrip(AcquireLockRequest.self, $0) },
        "Acquire Lock/Response": { try roundTrip(LockGrant.self, $0) },
        "Release Lock/Response": { try roundTrip(LockRelease.self, $0) },
        "Create User/Request": { try roundTrip(CreateUserRequest.self, $0) },
        "Create User/Response": { try roundTrip(User.self, $0) },
        "List Users/Response": { try roundTrip(UserList.self, $0) },
        "Error Response Format/": { try roundTrip(ErrorBody.self, $0) },
        "Rate Limit Exceeded Response/": { try roundTrip(ErrorBody.self, $0) },
    ]

    /// Examples that are not one of our types, and why.
    static let untyped: [String: String] = [
        // An external system's free-form event; the server reads it as a JSON object
        // (WebhookController) and the signing recipe test sends exactly this example.
        "Receive Webhook/Request": "free-form webhook event"
    ]

    /// Keys of `example` (recursively, through objects and the first element of arrays) that
    /// `encoded` lacks.
    static func missingKeys(_ example: Any, in encoded: Any, path: String = "") -> [String] {
        switch (example, encoded) {
        case (let example as [String: Any], let encoded as [String: Any]):
            return example.flatMap { key, value -> [String] in
                guard let other = encoded[key] else { return ["\(path)/\(key)"] }
                // Free-form maps (metadata, data, details, by_resource) carry the example's own keys.
                if ["metadata", "data", "details", "result", "by_resource", "components"].contains(key) { return [] }
                return missingKeys(value, in: other, path: "\(path)/\(key)")
            }
        case (let example as [Any], let encoded as [Any]):
            guard let first = example.first, let other = encoded.first else { return [] }
            return missingKeys(first, in: other, path: "\(path)[0]")
        default:
            return []
        }
    }

    @Test func everyExampleDecodesAndNoDocumentedFieldIsLost() throws {
        let examples = try Self.examples()
        #expect(examples.count >= 20)
        // The reference's Error Response Format block follows "All API errors follow...", not a label.
        for example in examples {
            let key = example.heading + "/" + (example.heading.hasSuffix("Response Format") || example.heading.hasSuffix("Exceeded Response") ? "" : example.label)
            if Self.untyped[key] != nil { continue }
            guard let decode = Self.types[key] else {
                Issue.record("no type for the example under '\(key)'")
                continue
            }
            let original = try JSONSerialization.jsonObject(with: Data(example.json.utf8))
            do {
                let encoded = try decode(example.json)
                // Requests may carry the reference's spelling of a field that we also accept
                // (coreId); responses must write every key.
                if example.label == "Response" || key.hasSuffix("/") {
                    #expect(Self.missingKeys(original, in: encoded).isEmpty, "\(key): \(Self.missingKeys(original, in: encoded))")
                }
            } catch {
                Issue.record("\(key) does not decode: \(error)")
            }
        }
    }
}
