/// Re-serialises JSON exactly as Python's `json.dumps(json.loads(body), sort_keys=True,
/// separators=(',', ':'))` writes it, so a signature computed the way the API reference's Python
/// recipe does can be checked against a body that was sent with different spacing.
///
/// What Python does, and this does: keys sorted by code point (the last of duplicate keys wins);
/// no whitespace; strings with `ensure_ascii` (every character outside space...`~` escaped as
/// `\uxxxx` in lowercase hex, astral characters as surrogate pairs, `\n \r \t \b \f \" \\`
/// short forms); integers exactly as written (any size; `-0` becomes `0`); other numbers as
/// Python's `repr(float)` (shortest round-trip digits, exponent form below 1e-4 and from 1e16,
/// `Infinity` for overflow).
public enum PythonJSON {
    /// Why a body is not JSON.
    public struct SyntaxError: Error, Hashable, Sendable {
        public let offset: Int
    }

    /// The Python-style serialisation of `json`; throws ``SyntaxError`` for invalid JSON.
    public static func canonical(_ json: [UInt8]) throws(SyntaxError) -> [UInt8] {
        var parser = Parser(bytes: json)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == json.count else { throw SyntaxError(offset: parser.index) }
        var output: [UInt8] = []
        output.reserveCapacity(json.count)
        write(value, to: &output)
        return output
    }

    indirect enum Value {
        case object([(key: String, value: Value)])
        case array([Value])
        case string(String)
        /// An integer's digits as written (with `-`).
        case integer(String)
        case float(Double)
        case bool(Bool)
        case null
    }

    /// Deeper nesting is refused rather than risking the stack.
    static let maximumDepth = 512

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        func fail() -> SyntaxError { SyntaxError(offset: index) }

        mutating func expect(_ literal: String) throws(SyntaxError) {
            for byte in literal.utf8 {
                guard index < bytes.count, bytes[index] == byte else { throw fail() }
                index += 1
            }
        }

        mutating func parseValue(depth: Int) throws(SyntaxError) -> Value {
            guard depth < PythonJSON.maximumDepth, index < bytes.count else { throw fail() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return try parseNumber()
            }
        }

        mutating func parseObject(depth: Int) throws(SyntaxError) -> Value {
            index += 1
            var members: [String: Value] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object([])
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail() }
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("}")
                break
            }
            let sorted = members.sorted { lhs, rhs in
                lhs.key.unicodeScalars.lexicographicallyPrecedes(rhs.key.unicodeScalars) { $0.value < $1.value }
            }
            return .object(sorted.map { (key: $0.key, value: $0.value) })
        }

        mutating func parseArray(depth: Int) throws(SyntaxError) -> Value {
            index += 1
            var elements: [Value] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array([])
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("]")
                return .array(elements)
            }
        }

        mutating func parseString() throws(SyntaxError) -> String {
            index += 1
            var scalars = String.UnicodeScalarView()
            var run = index
            func flush(_ end: Int) throws(SyntaxError) {
                guard run < end else { return }
                guard let text = String(validating: bytes[run..<end], as: UTF8.self) else { throw fail() }
                scalars.append(contentsOf: text.unicodeScalars)
            }
            while true {
                guard index < bytes.count else { throw fail() }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    try flush(index)
                    index += 1
                    return String(scalars)
                }
                if byte < 0x20 { throw fail() }
                if byte != UInt8(ascii: "\\") {
                    index += 1
                    continue
                }
                try flush(index)
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
                    if (0xD800...0xDBFF).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        let save = index
                        index += 2
                        let low = try hex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = save
                        }
                    }
                    // A lone surrogate cannot be a Swift scalar; Python would keep it, but a
                    // signature over such a body cannot be reproduced here, so refuse it.
                    guard let scalar = Unicode.Scalar(code) else { throw fail() }
                    scalars.append(scalar)
                default:
                    throw fail()
                }
                run = index
            }
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail() }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail()
                }
                value = value * 16 + digit
            }
            index += 4
            return value
        }

        mutating func parseNumber() throws(SyntaxError) -> Value {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count else { throw fail() }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[index]) {
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            } else {
                throw fail()
            }
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                let digits = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                guard index > digits else { throw fail() }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                let digits = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                guard index > digits else { throw fail() }
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if isInteger { return .integer(text == "-0" ? "0" : text) }
            guard let value = Double(text) else { throw fail() }
            return .float(value)
        }
    }

    // MARK: Writing

    static func write(_ value: Value, to output: inout [UInt8]) {
        switch value {
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                write(element, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .string(let text):
            writeString(text, to: &output)
        case .integer(let digits):
            output.append(contentsOf: digits.utf8)
        case .float(let number):
            output.append(contentsOf: floatRepr(number).utf8)
        case .bool(let flag):
            output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .null:
            output.append(contentsOf: "null".utf8)
        }
    }

    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output.append(contentsOf: "\\\"".utf8)
            case "\\": output.append(contentsOf: "\\\\".utf8)
            case "\n": output.append(contentsOf: "\\n".utf8)
            case "\r": output.append(contentsOf: "\\r".utf8)
            case "\t": output.append(contentsOf: "\\t".utf8)
            case "\u{08}": output.append(contentsOf: "\\b".utf8)
            case "\u{0C}": output.append(contentsOf: "\\f".utf8)
            case " "..."~": output.append(UInt8(scalar.value))
            default:
                if scalar.value > 0xFFFF {
                    let offset = scalar.value - 0x10000
                    appendEscape(0xD800 + (offset >> 10), to: &output)
                    appendEscape(0xDC00 + (offset & 0x3FF), to: &output)
                } else {
                    appendEscape(scalar.value, to: &output)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    static func appendEscape(_ code: UInt32, to output: inout [UInt8]) {
        let hex = String(code, radix: 16)
        output.append(contentsOf: "\\u".utf8)
        output.append(contentsOf: String(repeating: "0", count: 4 - hex.count).utf8)
        output.append(contentsOf: hex.utf8)
    }

    /// Python's `repr(float)`.
    public static func floatRepr(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        let sign = number.sign == .minus ? "-" : ""
        if number == 0 { return sign + "0.0" }
        // Swift's description has the shortest round-trip digits; only the layout differs.
        let text = number.magnitude.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1)
        let whole = String(mantissa[0])
        let fraction = mantissa.count == 2 ? String(mantissa[1]) : ""
        var digits = whole + fraction
        var point = whole.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if point <= -4 || point > 16 {
            let first = String(digits.prefix(1))
            let rest = String(digits.dropFirst())
            let power = point - 1
            let powerText = String(abs(power))
            return sign + first + (rest.isEmpty ? "" : "." + rest) + "e" + (power < 0 ? "-" : "+")
                + (powerText.count < 2 ? "0" : "") + powerText
        }
        if point <= 0 {
            return sign + "0." + String(repeating: "0", count: -point) + digits
        }
        if point >= digits.count {
            return sign + digits + String(repeating: "0", count: point - digits.count) + ".0"
        }
        return sign + String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
    }
}
