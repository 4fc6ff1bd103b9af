import Foundation

/// A Prometheus text-format (0.0.4) reader for tests: every sample with its labels, and the
/// `# TYPE` and `# HELP` of each family.
struct Exposition {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample] = []
    var types: [String: String] = [:]
    var helps: [String: String] = [:]

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1).map(String.init)
                if line.hasPrefix("# TYPE ") { types[parts[0]] = parts.count > 1 ? parts[1] : "" }
                else { helps[parts[0]] = parts.count > 1 ? parts[1] : "" }
                continue
            }
            if line.hasPrefix("#") { continue }
            samples.append(try Self.sample(String(line)))
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func sample(_ line: String) throws -> Sample {
        var chars = Array(line)[...]
        var name = ""
        while let char = chars.first, char != "{", char != " " {
            name.append(char)
            chars = chars.dropFirst()
        }
        var labels: [String: String] = [:]
        if chars.first == "{" {
            chars = chars.dropFirst()
            while chars.first != "}" {
                var key = ""
                while let char = chars.first, char != "=" {
                    key.append(char)
                    chars = chars.dropFirst()
                }
                chars = chars.dropFirst()  // =
                guard chars.first == "\"" else { throw Malformed(description: "label value not quoted: \(line)") }
                chars = chars.dropFirst()
                var value = ""
                while let char = chars.first, char != "\"" {
                    if char == "\\" {
                        chars = chars.dropFirst()
                        let escaped = chars.first ?? "\\"
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(char)
                    }
                    chars = chars.dropFirst()
                }
                chars = chars.dropFirst()  // closing quote
                labels[key] = value
                if chars.first == "," { chars = chars.dropFirst() }
                guard !chars.isEmpty else { throw Malformed(description: "unterminated labels: \(line)") }
            }
            chars = chars.dropFirst()  // }
        }
        let valueText = String(chars).trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
        let value: Double? =
            switch valueText {
            case "+Inf": .infinity
            case "-Inf": -.infinity
            case "NaN": .nan
            default: Double(valueText)
            }
        guard let value else { throw Malformed(description: "bad value: \(line)") }
        return Sample(name: name, labels: labels, value: value)
    }

    /// The value of the sample named `name` whose labels include `labels`.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    func samples(named name: String) -> [Sample] {
        samples.filter { $0.name == name }
    }
}
