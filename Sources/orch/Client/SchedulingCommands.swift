import ArgumentParser
import Foundation
import OrchClient
import OrchModels

/// The filter options of `orch retry` and `orch cancel` in bulk.
struct BulkFilter: ParsableArguments {
    @Argument(help: "Task ids (at most 1,000); or use the filters below.") var ids: [String] = []
    @Option(help: "Only tasks of this core.") var core: String?
    @Option(help: "Only tasks with this status.") var status: TaskStatus?
    @Option(help: "Only tasks of this priority.") var priority: Int?
    @Option(help: "Only tasks created before this time (RFC 3339).") var createdBefore: String?
    @Option(help: "Only tasks created after this time (RFC 3339).") var createdAfter: String?
    @Flag(help: "Only count the matching tasks; change nothing.") var dryRun = false

    func validate() throws {
        for (name, value) in [("--created-before", createdBefore), ("--created-after", createdAfter)] {
            if let value, Timestamp.parse(value) == nil { throw ValidationError("\(name) must be an RFC 3339 date-time") }
        }
        if ids.isEmpty, core == nil, status == nil, priority == nil, createdBefore == nil, createdAfter == nil {
            throw ValidationError("give task ids or at least one filter (--core, --status, --priority, --created-before, --created-after)")
        }
    }

    var request: BulkTaskRequest {
        BulkTaskRequest(
            coreID: core, status: status, priority: priority, createdBefore: createdBefore.flatMap(Timestamp.parse),
            createdAfter: createdAfter.flatMap(Timestamp.parse), taskIDs: ids.isEmpty ? nil : ids, dryRun: dryRun)
    }

    /// One line: how many matched, changed and were skipped.
    static func describe(_ answer: BulkTaskResponse, verb: String) -> String {
        answer.dryRun
            ? "\(answer.matched) matched, \(answer.matched - answer.skipped) would be \(verb), \(answer.skipped) skipped (dry run)"
            : "\(answer.matched) matched, \(answer.changed ?? 0) \(verb), \(answer.skipped) skipped"
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put failed or cancelled tasks back in the queue with a fresh attempt budget.",
        discussion: "One id retries that task and prints it; several ids or filters retry in bulk.")

    @OptionGroup var options: ClientOptions
    @OptionGroup var filter: BulkFilter

    func run() async throws {
        try await runClient {
            let client = try options.client()
            if filter.ids.count == 1, filter.core == nil, filter.status == nil, filter.priority == nil,
                filter.createdBefore == nil, filter.createdAfter == nil, !filter.dryRun
            {
                return try printJSON(try await client.retryTask(id: filter.ids[0]))
            }
            print(BulkFilter.describe(try await client.retryTasks(filter.request), verb: "retried"))
        }
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel tasks: by id, or every task matching the filters (finished ones are skipped).")

    @OptionGroup var options: ClientOptions
    @OptionGroup var filter: BulkFilter

    func run() async throws {
        try await runClient {
            print(BulkFilter.describe(try await options.client().cancelTasks(filter.request), verb: "cancelled"))
        }
    }
}

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Create, list, pause, resume and delete recurring schedules.",
        subcommands: [Create.self, List.self, Pause.self, Resume.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a schedule; prints it.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "A unique name.") var name: String
        @Option(help: "The core each firing dispatches to.") var core: String
        @Option(help: "A 5-field cron expression or @hourly, @daily...") var cron: String?
        @Option(help: "An interval such as 30s, 5m, 1h30m.") var every: String?
        @Option(help: "IANA time zone of the cron expression (default UTC).") var timezone = "UTC"
        @Option(help: "Each task's priority (default 1).") var priority = 1
        @Option(help: "Each task's timeout in seconds (default 300).") var timeout = 300
        @Option(help: "Each task's runs allowed (default 3).") var maxAttempts = 3
        @Option(help: "Each task's metadata as a JSON object.") var metadata: String?
        @Flag(help: "Create it paused.") var paused = false

        func validate() throws {
            if (cron == nil) == (every == nil) { throw ValidationError("give --cron or --every") }
        }

        func run() async throws {
            try await runClient {
                let template = ScheduleTaskTemplate(
                    priority: priority, timeout: timeout, maxAttempts: maxAttempts,
                    metadata: try metadata.map { try parseObject($0, option: "--metadata") } ?? [:])
                try printJSON(
                    try await options.client().createSchedule(
                        CreateScheduleRequest(
                            name: name, coreID: core, cron: cron, every: every, timezone: timezone, task: template,
                            paused: paused)))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules by name.")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            try await runClient {
                let list = try await options.client().schedules(limit: 500)
                if json { return try printJSON(list) }
                printTable(
                    ["SCHEDULE", "NAME", "CORE", "WHEN", "NEXT RUN", "LAST TASK"],
                    list.schedules.map { schedule in
                        [
                            schedule.scheduleID, schedule.name, schedule.coreID,
                            schedule.cron.map { "\($0) (\(schedule.timezone))" } ?? "every \(schedule.every ?? "?")",
                            schedule.paused ? "paused" : schedule.nextRunAt.map(Timestamp.format) ?? "-",
                            schedule.lastTaskID ?? "-",
                        ]
                    })
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a schedule: it fires no more until resumed.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule id.") var id: String

        func run() async throws {
            try await runClient {
                try printJSON(try await options.client().updateSchedule(id: id, UpdateScheduleRequest(paused: true)))
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a schedule from its next slot (slots passed while paused do not fire).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule id.") var id: String

        func run() async throws {
            try await runClient {
                try printJSON(try await options.client().updateSchedule(id: id, UpdateScheduleRequest(paused: false)))
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule (its tasks stay).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule id.") var id: String

        func run() async throws {
            try await runClient {
                try await options.client().deleteSchedule(id: id)
                print("deleted \(id)")
            }
        }
    }
}

struct CoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core", abstract: "List cores, pause and resume them, cap their running tasks.",
        subcommands: [List.self, Pause.self, Resume.self, Limit.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every core with its counts.")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            try await runClient {
                let cores = try await options.client().cores()
                if json { return try printJSON(CoreList(cores: cores)) }
                printTable(
                    ["CORE", "QUEUED", "SCHEDULED", "RUNNING", "WORKERS", "MAX RUNNING", "STATE", "OLDEST"],
                    cores.map { core in
                        [
                            core.coreID, String(core.queued), String(core.scheduled), String(core.running),
                            String(core.activeWorkers), core.maxRunning.map(String.init) ?? "-",
                            core.paused ? "paused" : "active", core.oldestQueuedAge.map { String(format: "%.0fs", $0) } ?? "-",
                        ]
                    })
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a core: dispatches are taken, claims get nothing.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The core.") var core: String

        func run() async throws {
            try await runClient { try printJSON(try await options.client().updateCore(id: core, CoreUpdateRequest(paused: true))) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a core; waiting claims are woken at once.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The core.") var core: String

        func run() async throws {
            try await runClient { try printJSON(try await options.client().updateCore(id: core, CoreUpdateRequest(paused: false))) }
        }
    }

    struct Limit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cap how many of a core's tasks run at once, over every node ('none' removes the cap).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The core.") var core: String
        @Argument(help: "The cap (1-100000), or none.") var limit: String

        func validate() throws {
            if limit != "none", Int(limit) == nil { throw ValidationError("the cap must be a number or none") }
        }

        func run() async throws {
            try await runClient {
                let cap: Int?? = limit == "none" ? .some(nil) : .some(Int(limit))
                try printJSON(try await options.client().updateCore(id: core, CoreUpdateRequest(maxRunning: cap)))
            }
        }
    }
}
