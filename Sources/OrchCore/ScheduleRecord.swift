import Foundation
import OrchModels

/// A recurring schedule with everything the server keeps about it.
public struct ScheduleRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var coreID: String
    public var cron: String?
    public var every: String?
    public var timezone: String
    public var template: ScheduleTaskTemplate
    public var paused: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// Where `every` counts its slots from: the time its timing was last set.
    public var anchorAt: Date
    /// The slot the next firing is for; `nil` while paused (or for a cron that never fires).
    public var nextRunAt: Date?
    public var lastRunAt: Date?
    public var lastTaskID: String?
    public var createdBy: String?

    public init(
        id: String, name: String, coreID: String, cron: String?, every: String?, timezone: String,
        template: ScheduleTaskTemplate, paused: Bool, createdAt: Date, updatedAt: Date? = nil, anchorAt: Date? = nil,
        nextRunAt: Date? = nil, lastRunAt: Date? = nil, lastTaskID: String? = nil, createdBy: String? = nil
    ) {
        self.id = id
        self.name = name
        self.coreID = coreID
        self.cron = cron
        self.every = every
        self.timezone = timezone
        self.template = template
        self.paused = paused
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.anchorAt = anchorAt ?? createdAt
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.lastTaskID = lastTaskID
        self.createdBy = createdBy
    }

    /// The first slot strictly after `date`: the cron's next firing in the schedule's zone,
    /// or the next multiple of `every` from the anchor.
    public func slot(after date: Date) -> Date? {
        if let every, let seconds = try? EveryInterval.parse(every) {
            let elapsed = date.timeIntervalSince(anchorAt)
            let count = max(0, (elapsed / Double(seconds)).rounded(.down) + 1)
            return anchorAt.addingTimeInterval(count * Double(seconds))
        }
        guard let cron, let expression = try? CronExpression(cron), let zone = TimeZone(identifier: timezone) else {
            return nil
        }
        return expression.next(after: date, in: zone)
    }

    public var apiValue: Schedule {
        Schedule(
            scheduleID: id, name: name, coreID: coreID, cron: cron, every: every, timezone: timezone, task: template,
            paused: paused, createdAt: createdAt, updatedAt: updatedAt, nextRunAt: nextRunAt, lastRunAt: lastRunAt,
            lastTaskID: lastTaskID)
    }
}

/// A schedule's firing: the task it dispatches and the schedule after it.
public struct ScheduleFiring: Sendable, Hashable {
    /// The slot fired (the schedule's `next_run_at` before); with the schedule's id, the key
    /// that lets each slot fire once.
    public var slot: Date
    public var transition: TaskTransition
    public var schedule: ScheduleRecord

    public init(slot: Date, transition: TaskTransition, schedule: ScheduleRecord) {
        self.slot = slot
        self.transition = transition
        self.schedule = schedule
    }
}

/// Creating, changing and firing schedules, as pure functions.
public enum ScheduleLifecycle {
    /// The longest a schedule name may be, in code points.
    public static let nameLength = 1...128

    /// A new schedule from a checked request, its first slot after `now` set unless paused.
    public static func create(
        _ request: CreateScheduleRequest, id: String, createdBy: String?, now: Date
    ) throws(OrchError) -> ScheduleRecord {
        try validate(
            name: request.name, coreID: request.coreID, cron: request.cron, every: request.every,
            timezone: request.timezone, template: request.task)
        var schedule = ScheduleRecord(
            id: id, name: request.name.nfc, coreID: request.coreID, cron: request.cron, every: request.every,
            timezone: request.timezone, template: request.task, paused: request.paused, createdAt: now,
            createdBy: createdBy)
        schedule.template.retryPolicy = request.task.retryPolicy ?? .standard
        schedule.nextRunAt = request.paused ? nil : schedule.slot(after: now)
        return schedule
    }

    /// `schedule` with the fields `request` gives. A new timing (cron, every or zone) counts
    /// from `now`; resuming sets the next slot from `now` (slots passed while paused do not
    /// fire); pausing clears it.
    public static func update(_ schedule: ScheduleRecord, with request: UpdateScheduleRequest, now: Date) throws(OrchError)
        -> ScheduleRecord
    {
        if request.cron != nil, request.every != nil {
            throw .invalidParameter("every", "give cron or every, not both")
        }
        var next = schedule
        if let name = request.name { next.name = name.nfc }
        if let core = request.coreID { next.coreID = core }
        let retimed = request.cron != nil || request.every != nil || request.timezone != nil
        if let cron = request.cron { (next.cron, next.every) = (cron, nil) }
        if let every = request.every { (next.every, next.cron) = (every, nil) }
        if let zone = request.timezone { next.timezone = zone }
        if var template = request.task {
            template.retryPolicy = template.retryPolicy ?? .standard
            next.template = template
        }
        if let paused = request.paused { next.paused = paused }
        try validate(
            name: next.name, coreID: next.coreID, cron: next.cron, every: next.every, timezone: next.timezone,
            template: next.template)
        if retimed { next.anchorAt = now }
        if next.paused {
            next.nextRunAt = nil
        } else if retimed || schedule.paused || next.nextRunAt == nil {
            next.nextRunAt = next.slot(after: now)
        }
        next.updatedAt = now
        return next
    }

    /// The firing of `schedule`'s due slot at `now`: one task (its metadata carries
    /// `schedule_id`), and the next slot after `now`, so that slots missed while the server
    /// was down fire once together, not once each. `nil` when nothing is due.
    public static func fire(_ schedule: ScheduleRecord, taskID: String, now: Date) -> ScheduleFiring? {
        guard !schedule.paused, let slot = schedule.nextRunAt, slot <= now else { return nil }
        var metadata = schedule.template.metadata
        metadata["schedule_id"] = .string(schedule.id)
        let request = DispatchRequest(
            coreID: schedule.coreID, priority: schedule.template.priority, timeout: schedule.template.timeout,
            stay: schedule.template.stay, maxAttempts: schedule.template.maxAttempts, metadata: metadata,
            retryPolicy: schedule.template.retryPolicy)
        var transition = TaskLifecycle.dispatch(request, id: taskID, createdBy: schedule.createdBy, now: now)
        transition.events[0].data["schedule_id"] = .string(schedule.id)
        transition.events[0].data["slot"] = .string(Timestamp.format(slot))
        var next = schedule
        next.lastRunAt = now
        next.lastTaskID = taskID
        next.nextRunAt = schedule.slot(after: max(now, slot))
        return ScheduleFiring(slot: slot, transition: transition, schedule: next)
    }

    /// Checks a schedule's fields; throws `INVALID_PARAMETER` naming the field.
    static func validate(
        name: String, coreID: String, cron: String?, every: String?, timezone: String, template: ScheduleTaskTemplate
    ) throws(OrchError) {
        try TextRules.check(name, codePoints: nameLength, field: "name")
        try TaskRules.validateCoreID(coreID, field: "core_id")
        guard let zone = TimeZone(identifier: timezone) else {
            throw .invalidParameter("timezone", "must be an IANA time zone name such as UTC or Europe/Paris")
        }
        switch (cron, every) {
        case (nil, nil):
            throw .invalidParameter("cron", "give cron or every")
        case (.some, .some):
            throw .invalidParameter("every", "give cron or every, not both")
        case (let cron?, nil):
            do {
                let expression = try CronExpression(cron)
                guard expression.next(after: Date(), in: zone) != nil else {
                    throw CronError("never fires")
                }
            } catch let error as CronError {
                throw .invalidParameter("cron", error.description)
            } catch {
                throw .invalidParameter("cron", "\(error)")
            }
        case (nil, let every?):
            do {
                _ = try EveryInterval.parse(every)
            } catch {
                throw .invalidParameter("every", error.description)
            }
        }
        try TaskRules.check(template.priority, in: TaskRules.priorities, field: "task.priority")
        try TaskRules.check(template.timeout, in: TaskRules.timeouts, field: "task.timeout")
        try TaskRules.check(template.maxAttempts, in: TaskRules.maxAttemptsRange, field: "task.max_attempts")
        if let policy = template.retryPolicy { try TaskRules.validate(policy, field: "task.retry_policy") }
        guard JSONValue.jsonText(template.metadata).utf8.count <= TaskRules.maxMetadataBytes else {
            throw .invalidParameter("task.metadata", "must be at most \(TaskRules.maxMetadataBytes) bytes as JSON")
        }
    }
}
