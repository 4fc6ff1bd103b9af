import Foundation
import OrchCore
import Testing

/// `PythonJSON` against Python itself: every input is re-serialised by `python3` at test time and
/// the bytes must match.
@Suite struct PythonJSONTests {
    static let inputs: [String] = [
        #"{"b": 1, "a": [1, 2.5, -0, -0.0, 1e2, 1E-7, 123.45, 0.1, 1e16, 9999999999999998.0, 1e15]}"#,
        #"{"text": "héllo wörld — 日本 😀", "ctl": "a\nb\t\u0001\u007f", "quote": "\"\\/"}"#,
        #"{"big": 123456789012345678901234567890, "neg": -98765432109876543210, "t": true, "f": false, "n": null}"#,
        #"{"z": {"y": {"x": []}}, "é": 1, "e": 2, "Z": 3, "_": 4, "10": 5, "9": 6}"#,
        #"{"dup": 1, "dup": 2}"#,
        #"  [ 5e-324 , 1.7976931348623157e308 , 2.5e-07 , 0.0001 , 0.00001 , 1234567.0 ]  "#,
        #"{"event":"task.completed","task_id":"task-1","data":{"duration":123.45,"metrics":{"cpu_usage":45.2}}}"#,
        #""\ud83d\ude00 and \u00e9""#,
        #"{"deep": [[[[{"a": [1, {"b": 2.0}]}]]]]}"#,
    ]

    static func python(_ input: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import json,sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.buffer.read()), sort_keys=True, separators=(',', ':')))",
        ]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        // Read to the end (Python exits once it has written); no `waitUntilExit`, which can
        // hang off the main thread.
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        return String(decoding: output, as: UTF8.self)
    }

    @Test(arguments: inputs)
    func matchesPythonByteForByte(input: String) throws {
        let ours = String(decoding: try PythonJSON.canonical(Array(input.utf8)), as: UTF8.self)
        #expect(ours == (try Self.python(input)))
    }

    @Test func randomFloatsMatchPythonRepr() throws {
        var generator = SystemRandomNumberGenerator()
        var numbers: [Double] = []
        for _ in 0..<300 {
            let exponent = Double(Int.random(in: -30...30, using: &generator))
            numbers.append(Double.random(in: -10...10, using: &generator) * pow(10, exponent))
        }
        numbers += [1e16, 1e15, 9_007_199_254_740_992, 0.5, 100, 1e-4, 1e-5, 123_456_789_012_345_680]
        let input = "[" + numbers.map { "\($0)" }.joined(separator: ",") + "]"
        let ours = String(decoding: try PythonJSON.canonical(Array(input.utf8)), as: UTF8.self)
        #expect(ours == (try Self.python(input)))
    }

    @Test(arguments: ["{", "{\"a\":}", "[1,]", "01", "1.", "\"\\x\"", "nul", "{\"a\":1}x", "\"\u{01}\""])
    func invalidJSONIsRefused(input: String) {
        #expect(throws: PythonJSON.SyntaxError.self) { try PythonJSON.canonical(Array(input.utf8)) }
    }
}
