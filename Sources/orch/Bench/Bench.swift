import ArgumentParser

/// `orch bench`: measures a server. Without `--url` each benchmark starts its own
/// `orch serve` (release build recommended) on a temporary SQLite file with rate limits off.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure an ORCH-Next server.",
        subcommands: [BenchSSE.self, BenchLocks.self])
}

/// Options every benchmark shares.
struct BenchTarget: ParsableArguments {
    @Option(help: "Server to measure; default: start a fresh `orch serve` on a temporary database.")
    var url: String?
    @Option(help: "Admin username for --url.") var username = "admin"
    @Option(help: "Admin password for --url (ORCH_PASSWORD).") var password: String?
}
