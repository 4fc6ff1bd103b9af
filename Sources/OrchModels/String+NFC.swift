import Foundation

extension String {
    /// The string in Unicode Normalization Form C. Identifiers (cores, resources, owners, worker
    /// ids, usernames) are normalized so once their lengths are checked, so that `café` typed either way is one
    /// lock and one owner. ASCII text is returned as it is, without any work.
    public var nfc: String {
        if utf8.allSatisfy({ $0 < 0x80 }) { return self }
        return precomposedStringWithCanonicalMapping
    }
}
