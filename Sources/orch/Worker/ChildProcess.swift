import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A program started with `posix_spawn`, in a process group of its own, with every signal at
/// its default disposition and none blocked.
///
/// Foundation's `Process` passes on the spawning thread's signal mask, and Swift's concurrency
/// threads block signals, so a program started from a task could not be stopped with SIGTERM.
/// Signals go to the whole group, so a shell script's own children stop with it.
final class ChildProcess: Sendable {
    let pid: pid_t
    private let exited = Atomic<Bool>(false)

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// The exit: a code, or the signal that ended it.
    enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    /// Starts `arguments[0]` (looked up in `PATH`) with `environment`; its standard output and
    /// error go to the write ends given, standard input is `/dev/null`.
    init(arguments: [String], environment: [String: String], standardOutput: Int32, standardError: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, 1)
        posix_spawn_file_actions_adddup2(&actions, standardError, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw SpawnError(description: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    var isRunning: Bool { !exited.load(ordering: .acquiring) }

    /// Sends `signal` to the program's process group (it and its children).
    func send(_ signal: Int32) {
        guard isRunning else { return }
        kill(-pid, signal)
    }

    /// Waits for the program to end (on a thread of its own: `waitpid` blocks).
    func wait() async -> Termination {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                exited.store(true, ordering: .releasing)
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal))
            }
        }
    }
}

/// A pipe whose ends are closed on `exec` (the child gets only what is duplicated onto it).
struct ClosingPipe {
    let read: Int32
    let write: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ChildProcess.SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        read = fds[0]
        write = fds[1]
    }
}
