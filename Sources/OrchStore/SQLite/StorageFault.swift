import Foundation
import GRDB
import OrchCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What is wrong with the embedded store's storage: writes fail (full, I/O error) or are refused (file replaced).
public enum StorageFault: String, Sendable, Hashable {
    /// The disk (or the file system's quota) is full: `SQLITE_FULL`. Clears when the health
    /// check's 64 KiB probe write succeeds again.
    case full = "storage_full"
    /// The disk failed a read or write: `SQLITE_IOERR`. Clears as `full` does.
    case ioError = "storage_io_error"
    /// The database file or its WAL is no longer the file at the configured path (deleted,
    /// moved or replaced under the running server). Lasts until a restart: anything written
    /// now would go to a file nobody will open again.
    case fileReplaced = "database_file_replaced"

    init?(_ error: DatabaseError) {
        switch error.resultCode {
        case .SQLITE_FULL: self = .full
        case .SQLITE_IOERR: self = .ioError
        default: return nil
        }
    }

    /// The 503 `SERVICE_UNAVAILABLE` clients get.
    public var error: OrchError {
        let message =
            switch self {
            case .full: "The database's storage is full; nothing was written"
            case .ioError: "The database's storage failed; nothing was written"
            case .fileReplaced:
                "The database file was deleted or replaced under the running server; nothing is written until it is restarted"
            }
        return .serviceUnavailable(
            message, details: ["reason": .string(rawValue)], retryAfter: self == .fileReplaced ? nil : 5)
    }
}

/// The database file and its WAL by device and inode, as they were when the store opened them.
final class DatabaseFiles: Sendable {
    struct Identity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    let path: String
    private let database: Identity?
    private let wal: Identity?

    init(path: String) {
        self.path = path
        database = Self.identity(path)
        wal = Self.identity(path + "-wal")
    }

    /// Whether the files at the path are still the ones opened.
    func areInPlace() -> Bool {
        guard let database, Self.identity(path) == database else { return false }
        if let wal, Self.identity(path + "-wal") != wal { return false }
        return true
    }

    static func identity(_ path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// The store's current ``StorageFault``, shared with its writer.
final class StorageFaultState: Sendable {
    private let state = Mutex<StorageFault?>(nil)

    var current: StorageFault? { state.withLock { $0 } }

    /// Records `fault` (`nil` clears it); a replaced file is never cleared or overwritten.
    func record(_ fault: StorageFault?) {
        state.withLock { if $0 != .fileReplaced { $0 = fault } }
    }
}
