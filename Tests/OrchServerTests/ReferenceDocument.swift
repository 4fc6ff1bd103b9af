import Foundation

/// The API reference (`../shared/seed/*.txt` beside the repository), read at test time so
/// that its example code is run as published, with no copy in this repository.
enum ReferenceDocument {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Where the reference may be: `ORCH_REFERENCE_DIR`, then `shared/seed` beside the
    /// repository or beside any folder above it, then `/work/shared/seed` (where these machines
    /// keep it, for clones made elsewhere).
    static var candidateFolders: [URL] {
        var folders: [URL] = []
        if let configured = ProcessInfo.processInfo.environment["ORCH_REFERENCE_DIR"] {
            folders.append(URL(fileURLWithPath: configured))
        }
        var directory = packageRoot
        while directory.path != "/" {
            directory.deleteLastPathComponent()
            folders.append(directory.appendingPathComponent("shared/seed"))
        }
        folders.append(URL(fileURLWithPath: "/work/shared/seed"))
        return folders
    }

    /// The reference's text; throws when it cannot be found.
    static func text() throws -> String {
        for folder in candidateFolders {
            let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
            for file in files.sorted(by: { $0.path < $1.path }) where file.pathExtension == "txt" {
                let text = try String(contentsOf: file, encoding: .utf8)
                if text.contains("ORCH-Next API Reference") { return text }
            }
        }
        throw ReferenceError(
            message: "the API reference was not found in \(candidateFolders.map(\.path).joined(separator: ", "))")
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
