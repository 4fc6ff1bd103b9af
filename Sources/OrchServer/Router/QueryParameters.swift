import Hummingbird
import OrchCore

/// Typed reading of query parameters; a bad value is 400 `INVALID_PARAMETER` naming it.
struct QueryParameters {
    let parameters: Parameters

    init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    /// The raw value, `nil` when absent or empty. Free-text filters read an empty value as no
    /// filter; typed parameters (integers, booleans, choices, times) refuse it.
    /// The value normalized to NFC (query values are names and filters); `nil` when absent or
    /// empty.
    func string(_ name: String) -> String? {
        raw(name)?.nfc
    }

    /// The value as sent; `nil` when absent or empty.
    func raw(_ name: String) -> String? {
        guard let value = parameters[name[...]], !value.isEmpty else { return nil }
        return String(value)
    }

    /// The value as given, empty included; `nil` only when absent.
    func present(_ name: String) -> String? {
        parameters[name[...]].map(String.init)
    }

    /// An integer within `range`, or `defaultValue` when absent.
    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(OrchError) -> Int {
        guard let text = present(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw .invalidParameter(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// `true` or `false` (also `1`/`0`), or `nil` when absent.
    func boolean(_ name: String) throws(OrchError) -> Bool? {
        guard let text = present(name) else { return nil }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .invalidParameter(name, "must be true or false")
        }
    }

    /// A value of a string enumeration, or `nil` when absent.
    func value<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws(OrchError) -> T?
    where T.RawValue == String {
        guard let text = present(name) else { return nil }
        guard let value = T(rawValue: text) else {
            throw .invalidParameter(name, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}
