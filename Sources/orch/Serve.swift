import ArgumentParser
import Foundation
import OrchServer
import OrchStore

/// `orch serve`: runs the server until SIGINT or SIGTERM.
///
/// Its options are not declared one by one: each entry of ``ServerConfiguration/settings`` is
/// a `--flag VALUE` (or `--flag=VALUE`) here and an `ORCH_*` variable, so the table is the only
/// list of settings and the help text is made from it.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the ORCH-Next server.",
        discussion: """
            Every option can also be set by its ORCH_* environment variable; an option given on \
            the command line wins. Exit codes: 0 after a graceful shutdown, 64 for invalid \
            configuration, 1 when the server fails.

            OPTIONS (each --flag VALUE or --flag=VALUE):
            \(ServerConfiguration.settings.map { "  --\($0.flag) (\($0.variable)): \($0.help)" }.joined(separator: "\n"))
            """)

    @Flag(help: "Print the effective configuration (secrets masked) and exit.") var printConfig = false

    @Argument(parsing: .allUnrecognized, help: .hidden) var options: [String] = []

    /// The options given, keyed by their environment variable.
    static func flags(_ arguments: [String]) throws(ConfigurationError) -> [String: String] {
        let settings = Dictionary(uniqueKeysWithValues: ServerConfiguration.settings.map { ($0.flag, $0.variable) })
        var flags: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--") else { throw ConfigurationError("unexpected argument '\(argument)'") }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let variable = settings[name] else { throw ConfigurationError("unknown option '--\(name)'") }
            if value == nil {
                index += 1
                guard index < arguments.count else { throw ConfigurationError("--\(name) needs a value") }
                value = arguments[index]
            }
            flags[variable] = value
            index += 1
        }
        return flags
    }

    func run() async throws {
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.load(
                flags: try Self.flags(options), environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("orch: \(error)\n".utf8))
            throw ExitCode(64)
        }
        if printConfig {
            print(configuration.printable())
            return
        }
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            do {
                _ = try ServerTLS.configuration(certificatePath: certificate, keyPath: key)
            } catch {
                FileHandle.standardError.write(Data("orch: \(error)\n".utf8))
                throw ExitCode(64)
            }
        }
        LoggingSetup.bootstrap(level: configuration.logLevel)
        let store: any Store
        do {
            store = try await openStore(configuration.databaseURL, poolSize: configuration.databasePool, serving: true)
        } catch {
            // One line saying what is wrong with the database (never its password), exit 69
            // (EX_UNAVAILABLE).
            FileHandle.standardError.write(Data("orch: \(error)\n".utf8))
            throw ExitCode(69)
        }
        let app: OrchApplication
        do {
            app = try await buildApplication(configuration, store: store)
        } catch let error as JWTSecretMismatch {
            try? await store.close()
            FileHandle.standardError.write(Data("orch: \(error)\n".utf8))
            throw ExitCode(78)
        }
        try await app.runService()
    }
}
