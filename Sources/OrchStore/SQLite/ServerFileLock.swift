import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One server per SQLite file: `orch serve` holds an exclusive `flock` on a lock file beside
/// the database (`<database>.lock`, holding the server's process id) for as long as it runs.
/// A second server on the same file fails to take it and stops at start instead of keeping a
/// second copy of the in-memory state (event bus, lock waiters, supervisors) beside the first.
///
/// Only servers take the lock: `orch backup`, the bench and other readers open the database
/// without it. The kernel releases it when the process ends in any way (also `kill -9`), so a
/// crashed server never blocks the next one. (A lock file of its own rather than the database
/// file: SQLite's own POSIX locks on the database would be dropped by closing any other
/// descriptor of it.)
final class ServerFileLock: Sendable {
    private let descriptor: Mutex<Int32>

    /// Takes the lock of the database at `databasePath`, or throws ``SQLiteInUseError``.
    init(databasePath: String) throws {
        let path = databasePath + ".lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SQLiteInUseError(description: "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var holder = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &holder, holder.count, 0)
            close(descriptor)
            guard reason == EWOULDBLOCK else {
                throw SQLiteInUseError(description: "cannot lock \(path): \(String(cString: strerror(reason)))")
            }
            let pid = String(decoding: holder.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw SQLiteInUseError(
                description: "the SQLite database \(databasePath) is in use by another orch serve"
                    + (pid.isEmpty ? "" : " (pid \(pid))")
                    + "; one server per SQLite file: stop that one, or run several nodes on PostgreSQL (ORCH_DATABASE_URL=postgres://...)")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, text, text.count, 0)
        self.descriptor = Mutex(descriptor)
    }

    /// Releases the lock (also done by the kernel when the process ends).
    func release() {
        descriptor.withLock { descriptor in
            guard descriptor >= 0 else { return }
            close(descriptor)
            descriptor = -1
        }
    }

    deinit { release() }
}

/// `orch serve` refused a SQLite file another server is using (``ServerFileLock``).
public struct SQLiteInUseError: Error, CustomStringConvertible {
    public var description: String
}
