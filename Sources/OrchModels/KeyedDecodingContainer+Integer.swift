extension KeyedDecodingContainer {
    /// Decodes an integer that may be written `3` or `3.0`; `nil` when absent or `null`.
    ///
    /// Foundation's decoder reports a non-integral number such as `2.5` as invalid JSON without
    /// naming the key; this reports it as a type mismatch at the key, so clients are told which
    /// field is wrong.
    public func decodeIntegerIfPresent(forKey key: Key) throws -> Int? {
        guard let value = try decodeIfPresent(JSONValue.self, forKey: key) else { return nil }
        switch value {
        case .null:
            return nil
        case .int(let number):
            if let exact = Int(exactly: number) { return exact }
        case .double(let number):
            if let exact = Int(exactly: number) { return exact }
        default:
            break
        }
        throw DecodingError.typeMismatch(
            Int.self, .init(codingPath: codingPath + [key], debugDescription: "must be an integer"))
    }
}
