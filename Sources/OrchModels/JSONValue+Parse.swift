/// Reading JSON text into a `JSONValue` directly, without `JSONDecoder`: the store reads a
/// task's metadata, result and error this way for every row it returns.
///
/// It reads what ``jsonText`` and Foundation's encoder write, and any RFC 8259 text. Numbers
/// follow `JSONValue`'s `Decodable` reading: a number that is an exact 64-bit integer (`2`,
/// `2.0`, `1e2`) is `.int`, any other `.double`.
extension JSONValue {
    public struct ParseError: Error, Sendable {
        /// Where in the text (in UTF-8 bytes) reading stopped.
        public var offset: Int
        /// The key that appeared twice in one object, when that is what stopped reading.
        public var duplicateKey: String?
        /// The last object key read before reading stopped, to say where the text went wrong.
        public var lastKey: String?

        public init(offset: Int, duplicateKey: String? = nil, lastKey: String? = nil) {
            self.offset = offset
            self.duplicateKey = duplicateKey
            self.lastKey = lastKey
        }
    }

    /// Reads RFC 8259 JSON text; throws ``ParseError`` for anything else, trailing commas and an
    /// object with the same key twice included.
    public init(parsing text: String) throws {
        var text = text
        self = try text.withUTF8 { try Self.parse($0) }
    }

    /// As ``init(parsing:)``, from UTF-8 bytes.
    public init(parsingUTF8 bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBufferPointer { try Self.parse($0) }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.fail() }
        return value
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// The last object key read, for error messages.
    var lastKey: String?
    /// Deeper nesting is refused rather than risking the stack.
    static let maximumDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    func fail() -> JSONValue.ParseError { JSONValue.ParseError(offset: index, lastKey: lastKey) }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    mutating func expect(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail() }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw fail() }
        index += count
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < Self.maximumDepth else { throw fail() }
        skipWhitespace()
        guard index < bytes.count else { throw fail() }
        switch bytes[index] {
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "["):
            index += 1
            var values: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(values)
            }
            while true {
                values.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(values)
                } else {
                    throw fail()
                }
            }
        case UInt8(ascii: "{"):
            index += 1
            var object: [String: JSONValue] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail() }
                let key = try string()
                guard object[key] == nil else {
                    throw JSONValue.ParseError(offset: index, duplicateKey: key, lastKey: key)
                }
                lastKey = key
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail() }
                index += 1
                object[key] = try value(depth: depth + 1)
                lastKey = key
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(object)
                } else {
                    throw fail()
                }
            }
        default:
            return try number()
        }
    }

    mutating func number() throws -> JSONValue {
        let start = index
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digitsStart = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                index += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            {
                integral = false
                index += 1
            } else {
                break
            }
        }
        guard index > digitsStart else { throw fail() }
        // No leading zeros ("01"), as JSON says.
        if bytes[digitsStart] == UInt8(ascii: "0"), index > digitsStart + 1,
            bytes[digitsStart + 1] >= UInt8(ascii: "0") && bytes[digitsStart + 1] <= UInt8(ascii: "9")
        {
            throw fail()
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int64(text) { return .int(value) }
        guard let double = Double(text), double.isFinite, Self.isJSONNumber(text) else { throw fail() }
        if let exact = Int64(exactly: double) { return .int(exact) }
        return .double(double)
    }

    /// `-? digits (. digits)? ([eE] [+-]? digits)?`: what `Double(_:)` accepts beyond it
    /// (`.5`, `5.`, `0x1p3`, `inf`) is not JSON.
    static func isJSONNumber(_ text: String) -> Bool {
        var rest = Substring(text)
        func digits() -> Bool {
            let count = rest.prefix { $0.isASCII && $0.isNumber }.count
            rest = rest.dropFirst(count)
            return count > 0
        }
        if rest.first == "-" { rest = rest.dropFirst() }
        guard digits() else { return false }
        if rest.first == "." {
            rest = rest.dropFirst()
            guard digits() else { return false }
        }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
            guard digits() else { return false }
        }
        return rest.isEmpty
    }

    mutating func string() throws -> String {
        index += 1  // the opening quote
        var scalars = String.UnicodeScalarView()
        var plainStart = index
        var plain = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                if plain {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[plainStart..<index]), as: UTF8.self)
                    index += 1
                    return text
                }
                scalars.append(contentsOf: String(decoding: UnsafeBufferPointer(rebasing: bytes[plainStart..<index]), as: UTF8.self).unicodeScalars)
                index += 1
                return String(scalars)
            }
            guard byte >= 0x20 else { throw fail() }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            scalars.append(contentsOf: String(decoding: UnsafeBufferPointer(rebasing: bytes[plainStart..<index]), as: UTF8.self).unicodeScalars)
            plain = false
            index += 1
            guard index < bytes.count else { throw fail() }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code) {
                    // A high surrogate must be followed by an escaped low one.
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                    else { throw fail() }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail() }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail() }
                scalars.append(scalar)
            default:
                throw fail()
            }
            plainStart = index
        }
        throw fail()
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail() }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail()
            }
            code = code << 4 | UInt32(digit)
            index += 1
        }
        return code
    }
}
