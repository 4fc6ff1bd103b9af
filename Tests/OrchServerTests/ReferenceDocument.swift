import Foundation

/// The API reference (`../shared/seed/*.txt` beside the repository), read at test time so
/// that its example code is run as published, with no copy in this repository.
enum ReferenceDocument {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The reference's text; throws when it cannot be found.
    static func text() throws -> String {
        let seed = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/seed")
        let files = (try? FileManager.default.contentsOfDirectory(at: seed, includingPropertiesForKeys: nil)) ?? []
        for file in files.sorted(by: { $0.path < $1.path }) where file.pathExtension == "txt" {
            let text = try String(contentsOf: file, encoding: .utf8)
            if text.contains("ORCH-Next API Reference") { return text }
        }
        throw ReferenceError(message: "the API reference was not found in \(seed.path)")
    }

    /// The fenced code blocks of `language` whose text contains `marker`.
    static func codeBlocks(_ language: String, containing marker: String) throws -> [String] {
        let text = try text()
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```\(language)" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks.filter { $0.contains(marker) }
    }

    struct ReferenceError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
