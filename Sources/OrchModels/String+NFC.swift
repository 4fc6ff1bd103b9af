import Foundation

extension String {
    /// The string in Unicode Normalization Form C. Identifiers (cores, resources, owners, worker
    /// ids, usernames) are normalized so when they arrive, so that `café` typed either way is one
    /// lock and one owner. ASCII text is returned as it is, without any work.
    public var nfc: String {
        if utf8.allSatisfy({ $0 < 0x80 }) { return self }
        return precomposedStringWithCanonicalMapping
    }
}

extension KeyedDecodingContainer {
    /// A string that names something (``Swift/String/nfc``).
    public func decodeIdentifier(forKey key: Key) throws -> String {
        try decode(String.self, forKey: key).nfc
    }

    /// An optional string that names something (``Swift/String/nfc``).
    public func decodeIdentifierIfPresent(forKey key: Key) throws -> String? {
        try decodeIfPresent(String.self, forKey: key)?.nfc
    }
}
