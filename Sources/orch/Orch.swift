import ArgumentParser
import OrchModels
import OrchServer

@main
struct Orch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orch",
        abstract: "ORCH-Next: task orchestration server and tools.",
        version: "\(OrchVersion.current) (commit \(BuildCommit.commit))",
        subcommands: [
            Serve.self, Login.self, Dispatch.self, Tasks.self, TaskCommand.self, Events.self, Retry.self, Cancel.self,
            ScheduleCommand.self, CoreCommand.self, Lock.self, UserCommand.self, TokenCommand.self, Worker.self,
            Backup.self, Bench.self,
        ],
        defaultSubcommand: nil)
}
