import Foundation
import GRDB

/// A consistent copy of a live SQLite database (SQLite's online backup API, through GRDB).
///
/// The copy is read in one step from one read transaction on a connection of its own, so it is
/// the database as of one commit: every transaction committed before the backup began is in
/// it, none is half in it. In WAL mode readers never block the server's writer, so the server
/// keeps serving meanwhile. The copy is written to a temporary file beside `destination`,
/// checked (`PRAGMA integrity_check`) and renamed into place, so `destination` is never a
/// partial copy.
public enum SQLiteBackup {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Copies the database at `source` to `destination`, which must not exist yet; returns the
    /// copy's size in bytes.
    @discardableResult
    public static func copy(from source: String, to destination: String) throws -> Int {
        let files = FileManager.default
        guard files.fileExists(atPath: source) else { throw Failure(description: "no database at \(source)") }
        guard !files.fileExists(atPath: destination) else {
            throw Failure(description: "\(destination) exists; give a new file")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let reader = try DatabaseQueue(path: source, configuration: configuration)
        defer { try? reader.close() }
        let partial = destination + ".partial-\(UUID().uuidString.prefix(8))"
        do {
            let copy = try DatabaseQueue(path: partial)
            try reader.backup(to: copy)
            let check = try copy.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            try copy.close()
            guard check == ["ok"] else {
                throw Failure(description: "the copy failed its integrity check: \(check.prefix(3).joined(separator: "; "))")
            }
            try files.moveItem(atPath: partial, toPath: destination)
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? files.removeItem(atPath: partial + suffix) }
            throw error
        }
        return (try? files.attributesOfItem(atPath: destination)[.size] as? Int) ?? 0
    }
}
