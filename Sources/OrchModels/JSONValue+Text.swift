/// JSON text written directly, without going through `JSONEncoder`: the store writes a task's
/// metadata and an event's data on every change, and Foundation's encoder (boxing every value
/// in a container) was a measurable share of a dispatch.
///
/// Object keys are sorted (the text of equal values is equal), `/` is not escaped, other
/// characters are escaped as RFC 8259 requires (`"`, `\` and control characters), and
/// everything else is written as UTF-8. Integers keep their form; a double is written in
/// Swift's shortest round-trip form, so it reads back as the same double. Doubles are finite:
/// every `JSONValue` comes from parsed JSON or from the server's own finite figures.
extension JSONValue {
    /// This value as compact JSON text.
    public var jsonText: String {
        var text = ""
        write(to: &text)
        return text
    }

    /// `object` as compact JSON text.
    public static func jsonText(_ object: [String: JSONValue]) -> String {
        var text = ""
        writeObject(object, to: &text)
        return text
    }

    /// Appends this value as compact JSON text to `text`.
    public func write(to text: inout String) {
        switch self {
        case .null: text += "null"
        case .bool(let value): text += value ? "true" : "false"
        case .int(let value): text += String(value)
        case .double(let value): text += value.isFinite ? value.description : "null"
        case .string(let value): Self.writeString(value, to: &text)
        case .array(let values):
            text += "["
            for (index, value) in values.enumerated() {
                if index > 0 { text += "," }
                value.write(to: &text)
            }
            text += "]"
        case .object(let object): Self.writeObject(object, to: &text)
        }
    }

    static func writeObject(_ object: [String: JSONValue], to text: inout String) {
        text += "{"
        for (index, key) in object.keys.sorted().enumerated() {
            if index > 0 { text += "," }
            writeString(key, to: &text)
            text += ":"
            object[key]!.write(to: &text)
        }
        text += "}"
    }

    /// Appends `value` as a JSON string to `text`.
    public static func writeString(_ value: String, to text: inout String) {
        text += "\""
        var plainStart = value.utf8.startIndex
        var index = plainStart
        let utf8 = value.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 {
                text += value[plainStart..<index]
                switch byte {
                case UInt8(ascii: "\""): text += "\\\""
                case UInt8(ascii: "\\"): text += "\\\\"
                case 0x0A: text += "\\n"
                case 0x0D: text += "\\r"
                case 0x09: text += "\\t"
                case 0x08: text += "\\b"
                case 0x0C: text += "\\f"
                default:
                    let hex = String(byte, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                index = utf8.index(after: index)
                plainStart = index
            } else {
                index = utf8.index(after: index)
            }
        }
        text += value[plainStart..<utf8.endIndex]
        text += "\""
    }
}
