import ArgumentParser
import OrchServer

@main
struct Orch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orch",
        abstract: "ORCH-Next: task orchestration server and tools.",
        version: OrchVersion.current,
        subcommands: [Serve.self, Bench.self],
        defaultSubcommand: nil)
}
