import ArgumentParser
import Foundation
import OrchClient
import OrchModels

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in and store the token (mode 0600) for the other commands.")

    @Option(help: "Server URL (default ORCH_URL, else http://127.0.0.1:8000).") var url: String?
    @Option(help: "Username.") var username: String
    @Option(help: "Password (default ORCH_PASSWORD, else asked for without echo).") var password: String?
    @Option(name: .customLong("cacert"), help: "PEM file of the CA to trust for an https:// server with a private CA (ORCH_CA_CERT).")
    var caCertificate: String?

    func run() async throws {
        try await runClient {
            let environment = ProcessInfo.processInfo.environment.filter { !$0.value.isEmpty }
            let url = url ?? environment["ORCH_URL"] ?? "http://127.0.0.1:8000"
            guard let password = password ?? environment["ORCH_PASSWORD"] ?? Self.prompt("Password: ") else {
                throw ValidationError("no password given (use --password, ORCH_PASSWORD or a terminal)")
            }
            let client = OrchClient(
                baseURL: url, httpClient: try TrustedCA.httpClient(caCertificate ?? environment["ORCH_CA_CERT"]))
            let response = try await client.login(username: username, password: password)
            try Credentials(url: client.baseURL, token: response.accessToken).save()
            print("Signed in to \(client.baseURL) as \(response.user.username) (\(response.user.role.rawValue)); token stored in \(Credentials.file.path)")
        }
    }

    static func prompt(_ text: String) -> String? {
        guard isatty(STDIN_FILENO) != 0, let pointer = getpass(text) else { return readLine() }
        return String(cString: pointer)
    }
}

struct Dispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dispatch a task to a core and print its id.",
        discussion: "With --wait, follows the task and exits 0 when it completes, 1 when it fails or is cancelled.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The core (worker queue).") var core: String
    @Option(help: "Priority 1-10 (default 1).") var priority: Int?
    @Option(help: "Seconds a run may take (default 300).") var timeout: Int?
    @Option(help: "Runs allowed before a failure is final (default 3).") var maxAttempts: Int?
    @Option(help: "Seconds before the task may run (0 to one year).") var delay: Int?
    @Option(help: "When the task may run, RFC 3339 (e.g. 2026-12-24T18:00:00Z).") var runAt: String?
    @Option(help: "Seconds before the first retry (default 1).") var retryInitial: Double?
    @Option(help: "What each further retry multiplies the wait by (default 2).") var retryCoefficient: Double?
    @Option(help: "Longest wait between retries, seconds (default 300).") var retryMax: Double?
    @Flag(help: "Requeue after each run until cancelled.") var stay = false
    @Option(help: "Metadata as a JSON object.") var metadata: String?
    @Option(help: "Idempotency key: a repeat within 24 h answers the first task.") var idempotencyKey: String?
    @Flag(help: "Wait for the task to finish, printing its events.") var wait = false

    func validate() throws {
        if delay != nil, runAt != nil { throw ValidationError("give --delay or --run-at, not both") }
        if let runAt, Timestamp.parse(runAt) == nil { throw ValidationError("--run-at must be an RFC 3339 date-time") }
    }

    /// The retry policy the options give, `nil` when none is given.
    var retryPolicy: RetryPolicy? {
        guard retryInitial != nil || retryCoefficient != nil || retryMax != nil else { return nil }
        let standard = RetryPolicy.standard
        return RetryPolicy(
            initialInterval: retryInitial ?? standard.initialInterval,
            backoffCoefficient: retryCoefficient ?? standard.backoffCoefficient,
            maximumInterval: retryMax ?? standard.maximumInterval)
    }

    func run() async throws {
        try await runClient {
            let client = try options.client()
            let request = DispatchRequest(
                coreID: core, priority: priority ?? 1, timeout: timeout ?? 300, stay: stay, maxAttempts: maxAttempts ?? 3,
                metadata: try metadata.map { try parseObject($0, option: "--metadata") } ?? [:], delay: delay,
                runAt: runAt.flatMap(Timestamp.parse), retryPolicy: retryPolicy)
            // Listen first, so no event between dispatch and subscription is missed.
            let stream = wait ? client.events(filter: "task.*") : nil
            let task = try await client.dispatch(request, idempotencyKey: idempotencyKey)
            print(task.taskID)
            guard let stream else { return }
            let outcome = try await Self.follow(task.taskID, stream: stream, client: client)
            if outcome != .completed { throw ExitCode(ClientExit.taskUnsuccessful) }
        }
    }

    /// Prints the task's events until it finishes; returns how it finished.
    static func follow(_ id: String, stream: AsyncThrowingStream<TaskEvent, any Error>, client: OrchClient) async throws
        -> TaskStatus
    {
        // A task may finish before the stream connects: its stored events are printed first,
        // and the stream's copies of them skipped.
        var printed = Set<String>()
        for event in try await client.taskEvents(taskID: id, limit: 1000).events {
            printed.insert(event.eventID)
            printError(describe(event))
        }
        let current = try await client.task(id: id)
        if current.status.isTerminal && !current.stay { return current.status }
        for try await event in stream where event.taskID == id {
            if printed.contains(event.eventID) { continue }
            printError(describe(event))
            switch event.eventType {
            case "task.completed": return .completed
            case "task.failed": return .failed
            case "task.cancelled": return .cancelled
            default: continue
            }
        }
        return try await client.task(id: id).status
    }
}

struct Tasks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")

    @OptionGroup var options: ClientOptions
    @Option(help: "Only this status (scheduled, queued, running, completed, failed, cancelled).") var status: TaskStatus?
    @Option(help: "Only this core.") var core: String?
    @Option(help: "At most this many (1-500, default 50).") var limit = 50
    @Flag(help: "Print the server's JSON.") var json = false

    func run() async throws {
        try await runClient {
            let list = try await options.client().tasks(status: status, coreID: core, limit: limit)
            if json { return try printJSON(list) }
            printTable(
                ["TASK", "CORE", "STATUS", "PRI", "PROGRESS", "CREATED"],
                list.tasks.map { task in
                    [
                        task.taskID, task.coreID, task.status.rawValue, String(task.priority),
                        task.progress.map { "\($0)%" } ?? "-", Timestamp.format(task.createdAt),
                    ]
                })
            if list.pagination.hasMore { print("(\(list.totalTasks) in all; use --limit for more)") }
        }
    }
}

extension TaskStatus: ExpressibleByArgument {}
extension Role: ExpressibleByArgument {}

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "task", abstract: "Show one task as JSON.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The task id.") var id: String

    func run() async throws {
        try await runClient { try printJSON(try await options.client().task(id: id)) }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print events, one line each: a task's stored events, or (with --follow) live events.")

    @OptionGroup var options: ClientOptions
    @Option(help: "Only this task.") var task: String?
    @Option(help: "Event types, comma-separated; task.* for a prefix (with --follow).") var filter: String?
    @Option(help: "Only this core (with --follow).") var core: String?
    @Flag(help: "Follow live events (reconnecting by itself) until interrupted.") var follow = false

    func validate() throws {
        if !follow && task == nil { throw ValidationError("give --task ID, or --follow for live events") }
    }

    func run() async throws {
        try await runClient {
            let client = try options.client()
            if !follow, let task {
                for event in try await client.taskEvents(taskID: task, limit: 1000).events { print(describe(event)) }
                return
            }
            for try await event in client.events(filter: filter, taskID: task, coreID: core) {
                // One write per line, unbuffered, so a pipe sees each event as it comes.
                FileHandle.standardOutput.write(Data((describe(event) + "\n").utf8))
            }
        }
    }
}
