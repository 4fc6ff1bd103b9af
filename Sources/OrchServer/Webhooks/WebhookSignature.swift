import Crypto
import Foundation
import OrchCore

/// The webhook signature scheme: `X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where
/// each `v1` is HMAC-SHA256 over `"<t>.<body>"` with one of the shared secrets.
struct WebhookSignature: Sendable {
    /// The header's timestamp.
    let timestamp: Int64
    /// The header's `v1` values, decoded from hex.
    let signatures: [[UInt8]]
    /// The `t=` text as sent, which is what was signed.
    let timestampText: String

    /// Parses the header; `nil` when it is malformed (no `t`, no `v1`, or a `v1` that is not hex).
    init?(header: String) {
        var timestamp: (Int64, String)?
        var signatures: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let item = part.trimmingCharacters(in: .whitespaces)
            if item.hasPrefix("t="), timestamp == nil {
                let text = String(item.dropFirst(2))
                guard let value = Int64(text) else { return nil }
                timestamp = (value, text)
            } else if item.hasPrefix("v1=") {
                guard let bytes = Self.hexBytes(item.dropFirst(3)), bytes.count == SHA256.byteCount else { return nil }
                signatures.append(bytes)
            }
        }
        guard let timestamp, !signatures.isEmpty else { return nil }
        self.timestamp = timestamp.0
        self.timestampText = timestamp.1
        self.signatures = signatures
    }

    /// The first of `candidates` (body forms) that one of `secrets` signed, with the matching
    /// signature in hex; compared in constant time.
    func verify(candidates: [[UInt8]], secrets: [String]) -> String? {
        for secret in secrets {
            let key = SymmetricKey(data: Data(secret.utf8))
            for body in candidates {
                let message = Data(timestampText.utf8) + Data(".".utf8) + Data(body)
                for signature in signatures
                where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: key) {
                    return Self.hex(signature)
                }
            }
        }
        return nil
    }

    /// The header value signing `body` at `timestamp` with `secret`.
    static func header(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + Data(body), using: key)
        return "t=\(timestamp),v1=\(hex(Array(code)))"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
