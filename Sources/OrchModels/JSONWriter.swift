import Foundation

/// Writes `Encodable` values as compact JSON straight into bytes: what every response body goes
/// through.
///
/// Foundation's `JSONEncoder` first builds a tree of boxed values and then serialises it; for a
/// page of fifty tasks that was a quarter of the request's CPU time. This writer streams
/// instead: each container writes its opening bracket when it is made and its closing one when
/// the value that made it has finished encoding.
///
/// Output: dates as ``Timestamp`` strings; `JSONValue` (and `[String: JSONValue]`) through
/// ``JSONValue/jsonText`` (object keys sorted); other objects' keys in the order the type
/// encodes them; `nil` optionals left out (as `encodeIfPresent` does); doubles in Swift's
/// shortest round-trip form, non-finite ones refused as `JSONEncoder` refuses them.
public struct JSONWriter: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = JSONSink()
        try sink.write(value)
        return sink.bytes
    }
}

/// The bytes being written, and the value writer every container shares.
final class JSONSink {
    var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(1024)
    }

    func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    func append(_ byte: UInt8) {
        bytes.append(byte)
    }

    func writeString(_ value: String) {
        var text = ""
        JSONValue.writeString(value, to: &text)
        append(text)
    }

    func writeDouble(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) is not valid JSON"))
        }
        append(value.description)
    }

    /// Writes any value: the types JSON has directly, else through its `encode(to:)`.
    func write<T: Encodable>(_ value: T) throws {
        // By exact type: `as?` casts bridge through NSNumber, which would write `false` as 0.
        if T.self == String.self {
            writeString(value as! String)
        } else if T.self == Bool.self {
            append((value as! Bool) ? "true" : "false")
        } else if T.self == Int.self {
            append(String(value as! Int))
        } else if T.self == Int64.self {
            append(String(value as! Int64))
        } else if T.self == Double.self {
            try writeDouble(value as! Double)
        } else if T.self == Date.self {
            writeString(Timestamp.format(value as! Date))
        } else if T.self == JSONValue.self {
            append((value as! JSONValue).jsonText)
        } else if T.self == [String: JSONValue].self {
            append(JSONValue.jsonText(value as! [String: JSONValue]))
        } else if T.self == Float.self {
            let float = value as! Float
            guard float.isFinite else {
                throw EncodingError.invalidValue(float, .init(codingPath: [], debugDescription: "\(float) is not valid JSON"))
            }
            append(float.description)
        } else if let integer = value as? any FixedWidthInteger, !(value is Bool) {
            append("\(integer)")
        } else {
            let encoder = StreamEncoder(sink: self)
            try value.encode(to: encoder)
            encoder.finish()
        }
    }
}

/// The `Encoder` one value encodes into: it opens at most one container, closed by `finish()`.
final class StreamEncoder: Encoder {
    enum Opened {
        case none, keyed, unkeyed, single
    }

    let sink: JSONSink
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    private(set) var opened = Opened.none
    /// Elements written into the open container (for the commas).
    var count = 0
    /// A nested container still open; closed before the next element or at `finish()`.
    var child: StreamEncoder?

    init(sink: JSONSink) {
        self.sink = sink
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if opened == .none {
            opened = .keyed
            sink.append(UInt8(ascii: "{"))
        }
        return KeyedEncodingContainer(KeyedWriter<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if opened == .none {
            opened = .unkeyed
            sink.append(UInt8(ascii: "["))
        }
        return UnkeyedWriter(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        if opened == .none { opened = .single }
        return SingleWriter(encoder: self)
    }

    /// Before an element of the open container: closes a nested container, writes the comma.
    func beginElement() {
        closeChild()
        if count > 0 { sink.append(UInt8(ascii: ",")) }
        count += 1
    }

    func writeKey(_ key: any CodingKey) {
        beginElement()
        sink.writeString(key.stringValue)
        sink.append(UInt8(ascii: ":"))
    }

    /// A nested encoder for a container opened inside this one.
    func nested() -> StreamEncoder {
        let encoder = StreamEncoder(sink: sink)
        child = encoder
        return encoder
    }

    private func closeChild() {
        if let child {
            self.child = nil
            child.finish()
        }
    }

    /// Closes what this encoder opened; a value that opened nothing is written as `{}`.
    func finish() {
        closeChild()
        switch opened {
        case .keyed: sink.append(UInt8(ascii: "}"))
        case .unkeyed: sink.append(UInt8(ascii: "]"))
        case .none: sink.append("{}")
        case .single: break
        }
    }
}

struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: StreamEncoder
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws {
        encoder.writeKey(key)
        encoder.sink.append("null")
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        encoder.writeKey(key)
        try encoder.sink.write(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        encoder.writeKey(key)
        return encoder.nested().container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.writeKey(key)
        return encoder.nested().unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.writeKey(JSONKey("super"))
        return encoder.nested()
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.writeKey(key)
        return encoder.nested()
    }
}

struct UnkeyedWriter: UnkeyedEncodingContainer {
    let encoder: StreamEncoder
    var codingPath: [any CodingKey] { [] }
    var count: Int { encoder.count }

    mutating func encodeNil() throws {
        encoder.beginElement()
        encoder.sink.append("null")
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.beginElement()
        try encoder.sink.write(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        encoder.beginElement()
        return encoder.nested().container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        encoder.beginElement()
        return encoder.nested().unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.beginElement()
        return encoder.nested()
    }
}

struct SingleWriter: SingleValueEncodingContainer {
    let encoder: StreamEncoder
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws {
        encoder.sink.append("null")
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.sink.write(value)
    }
}

/// A coding key made from a string.
struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
