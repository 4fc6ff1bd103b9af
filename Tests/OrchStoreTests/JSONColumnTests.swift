import Foundation
import OrchModels
import Testing

@testable import OrchStore

/// The store writes JSON columns with its own writer (`JSONValue.jsonText`); these check it
/// against Foundation's encoder and decoder on random values.
@Suite struct JSONColumnTests {
    /// Strings with every kind of character the writer treats differently.
    static let pieces = ["a", "Zz9", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "\u{7F}", "é", "日本", "🚀", "\u{2028}"]

    static func randomString(_ generator: inout SplitMix64) -> String {
        (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    /// A random value up to `depth` levels deep; `doubles` allows non-integral doubles.
    static func randomValue(_ generator: inout SplitMix64, depth: Int, doubles: Bool) -> JSONValue {
        let kinds = depth == 0 ? 5 : 7
        switch Int.random(in: 0..<kinds, using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int64.random(in: Int64.min...Int64.max, using: &generator))
        case 3:
            guard doubles else { return .int(Int64.random(in: -1000...1000, using: &generator)) }
            let value = Double.random(in: -1e9...1e9, using: &generator) * [1, 1e-12, 1e12].randomElement(using: &generator)!
            return value.rounded() == value ? .double(value + 0.5) : .double(value)
        case 4: return .string(randomString(&generator))
        case 5:
            return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in
                randomValue(&generator, depth: depth - 1, doubles: doubles)
            })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                object[randomString(&generator)] = randomValue(&generator, depth: depth - 1, doubles: doubles)
            }
            return .object(object)
        }
    }

    @Test func textIsFoundationsSortedEncodingForValuesWithoutDoubles() throws {
        var generator = SplitMix64(seed: 2026_11_27)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for _ in 0..<2000 {
            let value = Self.randomValue(&generator, depth: 3, doubles: false)
            let expected = String(decoding: try encoder.encode(value), as: UTF8.self)
            #expect(try JSONColumn.encodeValue(value) == expected)
        }
    }

    /// The response writer writes JSON values exactly as the column writer does, and typed
    /// models so that they decode back equal (dates, optionals left out, nested values).
    @Test func responseWriterAgreesWithTheColumnWriterAndDecodesBack() throws {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let value = Self.randomValue(&generator, depth: 3, doubles: true)
            #expect(String(decoding: try JSONWriter().encode(value), as: UTF8.self) == value.jsonText)
            let task = OrchTask(
                taskID: Self.randomString(&generator), coreID: "c", status: .running, priority: 3, timeout: 60,
                stay: Bool.random(using: &generator), attempts: 1, maxAttempts: 3,
                createdAt: Date(timeIntervalSince1970: 1_800_000_000.123), updatedAt: Date(timeIntervalSince1970: 1_800_000_001),
                startedAt: Bool.random(using: &generator) ? Date(timeIntervalSince1970: 1_800_000_002.5) : nil,
                completedAt: nil, duration: Bool.random(using: &generator) ? 12.75 : nil, progress: 40,
                workerID: "w", metadata: ["v": value], result: .array([value]), error: nil)
            let list = TaskList(totalTasks: 1, tasks: [task, task], pagination: Pagination(limit: 50, offset: 0, hasMore: false))
            let decoded = try Timestamp.makeDecoder().decode(TaskList.self, from: Data(JSONWriter().encode(list)))
            #expect(decoded == list)
        }
        #expect(throws: EncodingError.self) { _ = try JSONWriter().encode(["x": Double.nan]) }
    }

    /// The column reader agrees with Foundation's decoder: on what Foundation's encoder writes
    /// (escaped slashes, unicode escapes), and on hand-made texts, including ones both refuse.
    @Test func columnReaderAgreesWithFoundation() throws {
        var generator = SplitMix64(seed: 99)
        let encoder = JSONEncoder()
        for _ in 0..<1000 {
            let value = Self.randomValue(&generator, depth: 3, doubles: true)
            let text = String(decoding: try encoder.encode(value), as: UTF8.self)
            #expect(try JSONValue(parsing: text) == JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), "\(text)")
        }
        let texts = [
            #" { "a" : [ 1 , 2.5 , -0.0 , 1e2 , 2.0 , -3E-2 , 9223372036854775807 , 1e300 ] } "#,
            #""\u00e9\ud83d\ude80\/\b\f\n\r\t\"\\""#, "true", "null", "[]", "{}", "-12", "0",
            "01", "1.", ".5", "+1", "\"\\ud83d\"", "\"\\x\"", "nul", "[1] 2", "\"a\u{01}\"", "",
            "1e999", "-", "[", "{\"a\"}", "\"\\u12\"",
        ]
        for text in texts {
            let foundation = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            let ours = try? JSONValue(parsing: text)
            #expect(ours == foundation, "\(text)")
        }
        // Foundation lets trailing commas through; JSON (and this reader) does not.
        for text in ["[1,]", "{\"a\":1,}"] { #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: text) } }
    }

    @Test func everyValueReadsBackEqual() throws {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let value = Self.randomValue(&generator, depth: 3, doubles: true)
            #expect(try JSONColumn.decodeValue(try JSONColumn.encodeValue(value)) == value)
            let object: [String: JSONValue] = ["k": value, "": .string(Self.randomString(&generator))]
            #expect(try JSONColumn.decode(try JSONColumn.encode(object)) == object)
        }
    }
}
