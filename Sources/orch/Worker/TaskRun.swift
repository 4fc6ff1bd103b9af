import Foundation
import OrchClient
import OrchModels
import Synchronization

/// One claimed task run by the worker's program.
///
/// - The program runs with the worker's environment plus `ORCH_TASK_ID`, `ORCH_CORE_ID`,
///   `ORCH_TASK_METADATA` (the metadata as JSON) and `ORCH_ATTEMPT`.
/// - A stdout line `progress: <0-100> [message]` is reported as progress; the last non-empty
///   stdout line, when it is a JSON object, becomes the task's `result`.
/// - While it runs the lease is renewed every third of its length. When the server says the
///   task was cancelled, when the task's `timeout` passes, or when the worker's shutdown grace
///   runs out, the program gets SIGTERM, then SIGKILL after the grace period.
/// - Exit 0 completes the task; another exit fails it with `exit_code` (or `signal`) and the
///   last 4 KiB of stderr; a timeout fails it with `reason: timeout`. A cancelled task is not
///   reported (the server already has it), nor is one killed at shutdown (its lease lapses and
///   the server requeues it).
struct TaskRun {
    struct Settings: Sendable {
        var workerID: String
        var lease: Int
        var grace: Duration
        var command: [String]
        var log: @Sendable (String) -> Void
    }

    enum Stop: Sendable {
        case cancelled, timedOut, shutdown
    }

    let client: OrchClient
    let claimed: ClaimedTask
    let settings: Settings
    let shutdown: Shutdown

    static let stderrTail = 4096

    func run() async {
        let task = claimed.task
        let started = ContinuousClock.now
        var environment = ProcessInfo.processInfo.environment
        environment["ORCH_TASK_ID"] = task.taskID
        environment["ORCH_CORE_ID"] = task.coreID
        environment["ORCH_TASK_METADATA"] = String(
            decoding: (try? JSONEncoder.sorted.encode(task.metadata)) ?? Data("{}".utf8), as: UTF8.self)
        environment["ORCH_ATTEMPT"] = String(task.attempts)
        let process: ChildProcess
        let stdout: ClosingPipe
        let stderr: ClosingPipe
        do {
            stdout = try ClosingPipe()
            stderr = try ClosingPipe()
            process = try ChildProcess(
                arguments: settings.command, environment: environment, standardOutput: stdout.write,
                standardError: stderr.write)
        } catch {
            await report(
                StatusUpdateRequest(status: .failed, error: ["reason": "could not start the program", "detail": .string("\(error)")]),
                task: task)
            return
        }
        close(stdout.write)
        close(stderr.write)
        let exit = Task { await process.wait() }
        let lines = Self.lines(of: FileHandle(fileDescriptor: stdout.read, closeOnDealloc: true))
        let errors = Tail(limit: Self.stderrTail)
        let errorHandle = FileHandle(fileDescriptor: stderr.read, closeOnDealloc: true)
        // Read to the end on a thread of its own; the outcome waits for it, so the tail is whole.
        let errorsRead = Task {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    while true {
                        let chunk = errorHandle.availableData
                        if chunk.isEmpty { break }
                        errors.append(chunk)
                    }
                    done.resume()
                }
            }
        }
        let stop = Mutex<Stop?>(nil)
        let terminate: @Sendable (Stop) -> Void = { reason in
            let first = stop.withLock { current -> Bool in
                guard current == nil else { return false }
                current = reason
                return true
            }
            guard first, process.isRunning else { return }
            process.send(SIGTERM)
            let grace = settings.grace
            Task {
                try? await Task.sleep(for: grace)
                process.send(SIGKILL)
            }
        }

        let lastLine = Mutex<String?>(nil)
        let output = Task {
            for await line in lines {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty { lastLine.withLock { $0 = trimmed } }
                if let (progress, message) = Self.progress(trimmed) {
                    _ = try? await client.updateStatus(
                        taskID: task.taskID,
                        StatusUpdateRequest(
                            status: .running, progress: progress, message: message, leaseToken: claimed.leaseToken,
                            workerID: settings.workerID))
                }
            }
        }
        let watchers = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {  // heartbeats
                    let interval = Duration.milliseconds(settings.lease * 1000 / 3)
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        if Task.isCancelled { return }
                        do {
                            let beat = try await client.heartbeat(
                                taskID: task.taskID,
                                HeartbeatRequest(workerID: settings.workerID, leaseToken: claimed.leaseToken, lease: settings.lease))
                            if beat.cancelRequested || beat.status != .running {
                                terminate(.cancelled)
                                return
                            }
                        } catch let error as OrchClientError where error.status == 409 || error.status == 404 {
                            // The task is no longer ours (finished, cancelled, or the lease lapsed).
                            terminate(.cancelled)
                            return
                        } catch {
                            continue  // the server is unreachable for now; keep trying
                        }
                    }
                }
                group.addTask {  // the task's timeout
                    try? await Task.sleep(for: .seconds(task.timeout))
                    if !Task.isCancelled { terminate(.timedOut) }
                }
                group.addTask {  // shutdown: let it finish within the grace period
                    await shutdown.waitForStop()
                    try? await Task.sleep(for: settings.grace)
                    if !Task.isCancelled { terminate(.shutdown) }
                }
            }
        }
        let termination = await exit.value
        watchers.cancel()
        // A child the program left behind may hold its output open: stop the whole group.
        process.send(SIGKILL)
        await output.value
        await errorsRead.value
        let seconds = (ContinuousClock.now - started).components
        let duration = Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18
        let stopped = stop.withLock { $0 }
        let (code, signalled): (Int32, Bool) =
            switch termination {
            case .exited(let code): (code, false)
            case .signalled(let signal): (signal, true)
            }
        let tail = errors.text
        let outcome: String
        switch stopped {
        case .cancelled:
            outcome = "cancelled"
        case .shutdown:
            outcome = "killed at shutdown (the server will requeue it)"
        case .timedOut:
            outcome = "failed: timed out after \(task.timeout) s"
            await report(
                StatusUpdateRequest(
                    status: .failed, error: ["reason": "timeout", "timeout": .int(Int64(task.timeout)), "stderr": .string(tail)],
                    duration: duration, retry: false), task: task)
        case nil where !signalled && code == 0:
            outcome = "completed"
            let result = lastLine.withLock { $0 }.flatMap(Self.jsonObject)
            await report(StatusUpdateRequest(status: .completed, result: result, duration: duration), task: task)
        case nil:
            let error: JSONValue =
                signalled
                ? ["signal": .int(Int64(code)), "stderr": .string(tail)]
                : ["exit_code": .int(Int64(code)), "stderr": .string(tail)]
            // Reported with the lease: the server retries it while attempts remain.
            outcome = signalled ? "failed: killed by signal \(code)" : "failed: exit code \(code)"
            await report(StatusUpdateRequest(status: .failed, error: error, duration: duration), task: task)
        }
        settings.log(
            "task \(task.taskID) (attempt \(task.attempts)) \(outcome) in \(String(format: "%.2f", duration)) s")
    }

    /// Reports the outcome with the lease token; retried while the server is unreachable (up
    /// to the lease), given up on a refusal (the task moved on without us).
    func report(_ update: StatusUpdateRequest, task: OrchTask) async {
        var update = update
        update.leaseToken = claimed.leaseToken
        update.workerID = settings.workerID
        let deadline = ContinuousClock.now + .seconds(settings.lease)
        while true {
            do {
                try await client.updateStatus(taskID: task.taskID, update)
                return
            } catch let error as OrchClientError where error.status < 500 {
                settings.log("task \(task.taskID): the server refused the outcome: \(error)")
                return
            } catch {
                guard ContinuousClock.now < deadline else {
                    settings.log("task \(task.taskID): could not report the outcome: \(error)")
                    return
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// `progress: 40 message` as (40, "message").
    static func progress(_ line: String) -> (Int, String?)? {
        guard line.lowercased().hasPrefix("progress:") else { return nil }
        let rest = line.dropFirst("progress:".count).trimmingCharacters(in: .whitespaces)
        let number = rest.prefix { $0.isNumber }
        guard let value = Int(number), (0...100).contains(value) else { return nil }
        let message = rest.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        return (value, message.isEmpty ? nil : message)
    }

    static func jsonObject(_ line: String) -> JSONValue? {
        guard line.hasPrefix("{"), let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(line.utf8))
        else { return nil }
        return .object(object)
    }

    /// The lines a pipe delivers, read on a thread of their own.
    static func lines(of handle: FileHandle) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
            continuation.finish()
        }
        return stream
    }
}

/// The last `limit` bytes written to it.
final class Tail: Sendable {
    private let data = Mutex(Data())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: Data) {
        data.withLock { data in
            data.append(chunk)
            if data.count > limit { data.removeFirst(data.count - limit) }
        }
    }

    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
}
