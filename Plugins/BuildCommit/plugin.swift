import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` into the target it is applied to, before every build: the commit
/// the package's sources were built from (`git rev-parse`, with `-dirty` when the work tree has
/// uncommitted changes; `unknown` outside a repository). The file is rewritten only when the
/// text changes, so an unchanged commit recompiles nothing.
@main
struct BuildCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildCommit.swift")
        let script = #"""
            cd "$1" || exit 1
            commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
              commit="$commit-dirty"
            fi
            text="enum BuildCommit { static let commit = \"$commit\" }"
            [ -f "$2" ] && [ "$(cat "$2")" = "$text" ] && exit 0
            printf '%s\n' "$text" > "$2"
            """#
        return [
            .prebuildCommand(
                displayName: "Recording the build's commit",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "build-commit", context.package.directoryURL.path, output.path],
                outputFilesDirectory: context.pluginWorkDirectoryURL)
        ]
    }
}
