import ArgumentParser
import Foundation
import OrchStore

/// `orch backup DEST`: a consistent copy of a live SQLite database, while its server serves.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a live SQLite database to a new file (SQLite's online backup).",
        discussion: """
            The copy holds every transaction committed before the backup began; the server keeps \
            serving meanwhile. A server started on the copy (ORCH_DATABASE_URL=sqlite://DEST) has \
            those tasks. For PostgreSQL use pg_dump. Exit codes: 0 on success, 64 for a PostgreSQL \
            or invalid URL, 1 when the copy fails.
            """)

    @Argument(help: "The new file to write (it must not exist).") var destination: String

    @Option(help: "The database (default: ORCH_DATABASE_URL, else sqlite://orch.sqlite).")
    var databaseURL: String?

    func run() async throws {
        let text = databaseURL ?? ProcessInfo.processInfo.environment["ORCH_DATABASE_URL"] ?? "sqlite://orch.sqlite"
        guard let url = DatabaseURL(text) else {
            FileHandle.standardError.write(Data("orch: the database URL does not parse\n".utf8))
            throw ExitCode(64)
        }
        let path: String
        switch url {
        case .sqliteFile(let file): path = file
        case .sqliteMemory:
            FileHandle.standardError.write(Data("orch: an in-memory database has nothing to back up\n".utf8))
            throw ExitCode(64)
        case .postgres:
            FileHandle.standardError.write(
                Data("orch: backup copies SQLite databases; for PostgreSQL use pg_dump (pg_dump -Fc DATABASE_URL > FILE)\n".utf8))
            throw ExitCode(64)
        }
        do {
            let started = ContinuousClock.now
            let bytes = try SQLiteBackup.copy(from: path, to: destination)
            let seconds = (ContinuousClock.now - started).components
            let elapsed = Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18
            print("orch: backed up \(path) to \(destination) (\(bytes) bytes in \(String(format: "%.2f", elapsed)) s)")
        } catch {
            FileHandle.standardError.write(Data("orch: backup failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
