import OrchModels

/// How text lengths are counted: in Unicode code points, as OpenAPI's `minLength` and
/// `maxLength` count them (not in grapheme clusters, which let one "character" be any number of
/// combining marks, nor in bytes). Every bounded string is also refused early by its UTF-8
/// size (at most 4 bytes per code point), before anything walks it.
public enum TextRules {
    /// Throws `INVALID_PARAMETER` for `field` unless `value` has a number of code points in
    /// `range`.
    public static func check(_ value: String, codePoints range: ClosedRange<Int>, field: String) throws(OrchError) {
        guard fits(value, codePoints: range) else {
            throw .invalidParameter(field, "must be \(range.lowerBound) to \(range.upperBound) characters")
        }
    }

    /// Whether `value` has a number of code points in `range` (the byte bound checked first).
    public static func fits(_ value: String, codePoints range: ClosedRange<Int>) -> Bool {
        value.utf8.count <= range.upperBound * 4 && range.contains(value.unicodeScalars.count)
    }
}
