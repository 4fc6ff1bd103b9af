import ArgumentParser
import AsyncHTTPClient
import Foundation
import OrchClient
import OrchModels
import Synchronization

/// `orch worker --core CORE -- PROGRAM [ARGS...]`: turns any program into a worker.
///
/// Each of `--concurrency` slots long-polls the core for one task, runs PROGRAM for it with the
/// task in its environment, heartbeats while it runs, and reports the outcome (see
/// ``TaskRun``). SIGTERM (or a first SIGINT) stops claiming and lets running programs finish
/// for up to `--grace` seconds, then kills them and exits; a second SIGINT exits at once (the
/// leases then run out and the server requeues the tasks).
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Claim tasks of a core and run a program for each.",
        discussion: """
            The program gets ORCH_TASK_ID, ORCH_CORE_ID, ORCH_TASK_METADATA (JSON) and ORCH_ATTEMPT. \
            A stdout line "progress: 40 message" reports progress; the last stdout line, if a JSON object, \
            becomes the result. Exit 0 completes the task; any other exit fails it with the code and the \
            tail of stderr.
            """)

    @OptionGroup var options: ClientOptions
    @Option(help: "The core to work for.") var core: String
    @Option(help: "Programs run at once (default 1).") var concurrency = 1
    @Option(help: "Lease seconds, renewed by heartbeats at a third of it (default 30).") var lease = 30
    @Option(help: "Seconds a program gets after SIGTERM before SIGKILL, and to finish on shutdown (default 10).")
    var grace = 10
    @Option(help: "This worker's id (default host-pid).") var workerID: String?
    @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the program to run after --") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 256") }
        guard (3...600).contains(lease) else { throw ValidationError("--lease must be 3 to 600 seconds") }
    }

    func run() async throws {
        let client = try options.client()
        let id = workerID ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let shutdown = Shutdown()
        shutdown.install()
        log("worker \(id): core \(core), \(concurrency) at once, running \(command.joined(separator: " "))")
        let settings = TaskRun.Settings(
            workerID: id, lease: lease, grace: .seconds(grace), command: command, log: log)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask { await slot(client: client, settings: settings, shutdown: shutdown) }
            }
            // A second SIGINT: leave now.
            group.addTask {
                await shutdown.waitForImmediate()
                if Task.isCancelled { return }
                log("worker \(id): stopping at once; leases will lapse and the server requeues the tasks")
                Foundation.exit(130)
            }
            for _ in 0..<concurrency { await group.next() }
            group.cancelAll()
        }
        log("worker \(id): stopped")
    }

    /// One slot: claim, run, report, until shutdown.
    func slot(client: OrchClient, settings: TaskRun.Settings, shutdown: Shutdown) async {
        var failures = 0
        while !shutdown.isStopping {
            let claimed: [ClaimedTask]
            do {
                claimed = try await shutdown.unlessStopping {
                    try await client.claim(
                        core: core, ClaimRequest(workerID: settings.workerID, wait: 20, lease: lease, maxTasks: 1))
                }
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                let wait = min(30, 1 << min(failures - 1, 5))
                log("worker: claim failed (\(Self.describe(error))); retrying in \(wait) s")
                try? await shutdown.sleep(.seconds(wait))
                continue
            }
            for task in claimed {
                await TaskRun(client: client, claimed: task, settings: settings, shutdown: shutdown).run()
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? OrchClientError { return error.description }
        return String(describing: error)
    }
}

/// Writes one line to standard error.
@Sendable func log(_ text: String) {
    FileHandle.standardError.write(Data("\(Timestamp.format(Date())) \(text)\n".utf8))
}

/// The write end of the self-pipe the signal handler writes to (set once, before handlers).
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

/// The worker's shutdown state, driven by SIGTERM and SIGINT.
final class Shutdown: Sendable {
    private struct State {
        var stopping = false
        var immediate = false
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        var immediateWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// Handles SIGTERM and SIGINT with a real handler that writes the signal to a pipe (read
    /// on a thread). Not `SIG_IGN`: an ignored signal stays ignored in the programs the worker
    /// starts, which could then not be stopped with SIGTERM; a handler is reset by `exec`.
    func install() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        // Close-on-exec: the programs the worker starts do not inherit the pipe.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        signalPipeWrite = fds[1]
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber) { received in
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(signalPipeWrite, &byte, 1)
            }
        }
        let readEnd = fds[0]
        Thread.detachNewThread { [self] in
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 {
                if Int32(byte) == SIGINT && isStopping { stopNow() } else { stop() }
            }
        }
    }

    func stop() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard !state.stopping else { return nil }
            state.stopping = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        guard let waiters else { return }
        log("worker: shutting down; no more claims, running programs may finish")
        for waiter in waiters { waiter.resume() }
    }

    func stopNow() {
        stop()
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.immediate = true
            defer { state.immediateWaiters = [:] }
            return Array(state.immediateWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when shutdown starts, or when the calling task is cancelled.
    func waitForStop() async {
        await wait(immediate: false)
    }

    /// Returns on a second SIGINT, or when the calling task is cancelled.
    func waitForImmediate() async {
        await wait(immediate: true)
    }

    private func wait(immediate: Bool) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if (immediate ? state.immediate : state.stopping) || Task.isCancelled { return true }
                    if immediate { state.immediateWaiters[id] = continuation } else { state.waiters[id] = continuation }
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state in
                immediate ? state.immediateWaiters.removeValue(forKey: id) : state.waiters.removeValue(forKey: id)
            }?.resume()
        }
    }

    /// Runs `body`, cancelling it when shutdown starts (then throws `CancellationError`).
    func unlessStopping<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                await self.waitForStop()
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw CancellationError() }
            return value
        }
    }

    /// Sleeps, waking early when shutdown starts.
    func sleep(_ duration: Duration) async throws {
        _ = try? await unlessStopping {
            try await Task.sleep(for: duration)
            return true
        }
    }
}
