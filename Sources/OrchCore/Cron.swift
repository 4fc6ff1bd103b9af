import Foundation

/// A standard five-field cron expression (`minute hour day-of-month month day-of-week`),
/// evaluated in a time zone.
///
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n`, and lists of these;
/// months and weekdays also take English names (`jan`, `mon`); weekday 0 and 7 are Sunday. As
/// in cron, when both day-of-month and day-of-week are restricted (neither starts with `*`) a
/// day matches either. `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
/// (`@midnight`) and `@hourly` stand for their usual expressions.
///
/// Daylight-saving changes are handled as Vixie cron handles them: an expression whose minute
/// and hour are both fixed (neither starts with `*`) fires once per matching day: a time
/// skipped by a change forward fires at the moment of the change, and a time repeated by a
/// change back fires at its first occurrence only. Any other expression follows the clock:
/// skipped minutes do not happen, repeated ones happen twice.
public struct CronExpression: Sendable, Hashable {
    public let minutes: [Int]
    public let hours: [Int]
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    /// Day-of-month and day-of-week are both restricted: a day matches either.
    let eitherDay: Bool
    /// Minute and hour are both fixed (see the type's documentation).
    let fixedTime: Bool
    public let source: String

    /// Parses `text`; the error names what is wrong.
    public init(_ text: String) throws(CronError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let expanded: String
        switch trimmed.lowercased() {
        case "@yearly", "@annually": expanded = "0 0 1 1 *"
        case "@monthly": expanded = "0 0 1 * *"
        case "@weekly": expanded = "0 0 * * 0"
        case "@daily", "@midnight": expanded = "0 0 * * *"
        case "@hourly": expanded = "0 * * * *"
        default:
            if trimmed.hasPrefix("@") { throw CronError("unknown macro \(trimmed)") }
            expanded = trimmed
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else { throw CronError("must have 5 fields (minute hour day month weekday), not \(fields.count)") }
        minutes = try Self.field(fields[0], name: "minute", range: 0...59).sorted()
        hours = try Self.field(fields[1], name: "hour", range: 0...23).sorted()
        daysOfMonth = try Self.field(fields[2], name: "day of month", range: 1...31)
        months = try Self.field(fields[3], name: "month", range: 1...12, names: Self.monthNames)
        daysOfWeek = Set(try Self.field(fields[4], name: "day of week", range: 0...7, names: Self.dayNames).map { $0 % 7 })
        eitherDay = !fields[2].hasPrefix("*") && !fields[4].hasPrefix("*")
        fixedTime = !fields[0].hasPrefix("*") && !fields[1].hasPrefix("*")
        source = text
    }

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String] = []) throws(CronError)
        -> Set<Int>
    {
        var values = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { throw CronError("\(name): \"\(item)\" is not a value, range or step") }
            var step = 1
            if parts.count == 2 {
                guard let number = Int(parts[1]), number > 0 else { throw CronError("\(name): step \"\(parts[1])\" must be a positive number") }
                step = number
            }
            let low: Int
            let high: Int
            if parts[0] == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else {
                let bounds = parts[0].split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw CronError("\(name): \"\(parts[0])\" is not a range") }
                low = try value(bounds[0], name: name, range: range, names: names)
                high = bounds.count == 2 ? try value(bounds[1], name: name, range: range, names: names)
                    : (parts.count == 2 ? range.upperBound : low)
                guard low <= high else { throw CronError("\(name): range \(parts[0]) runs backwards") }
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    private static func value(_ text: Substring, name: String, range: ClosedRange<Int>, names: [String]) throws(CronError) -> Int {
        if let number = Int(text) {
            guard range.contains(number) else { throw CronError("\(name): \(number) is outside \(range.lowerBound)-\(range.upperBound)") }
            return number
        }
        if let index = names.firstIndex(of: text.lowercased()) {
            // Months are 1-based, weekdays 0-based.
            return range.lowerBound + index
        }
        throw CronError("\(name): \"\(text)\" is not a number\(names.isEmpty ? "" : " or a name")")
    }

    /// Whether the expression matches the calendar day `day` (days since 1970-01-01).
    func matches(day: Int) -> Bool {
        let (_, month, dayOfMonth) = CivilDate.fields(day: day)
        guard months.contains(month) else { return false }
        let weekday = CivilDate.weekday(day: day)
        if eitherDay { return daysOfMonth.contains(dayOfMonth) || daysOfWeek.contains(weekday) }
        return daysOfMonth.contains(dayOfMonth) && daysOfWeek.contains(weekday)
    }

    /// The first firing strictly after `date` in `zone`, `nil` when there is none within 28
    /// years (an impossible date such as 30 February).
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        let after = date.timeIntervalSince1970.rounded(.down)
        let localNow = after + Double(zone.secondsFromGMT(for: date))
        var day = Int((localNow / 86_400).rounded(.down)) - 1
        let lastDay = day + 366 * 28
        while day <= lastDay {
            defer { day += 1 }
            guard matches(day: day) else { continue }
            var best: Double?
            for hour in hours {
                for minute in minutes {
                    let local = Double(day * 86_400 + hour * 3_600 + minute * 60)
                    for instant in instants(ofLocal: local, in: zone) where instant > after {
                        best = min(best ?? instant, instant)
                    }
                }
            }
            if let best { return Date(timeIntervalSince1970: best) }
        }
        return nil
    }

    /// The instants at which the wall clock of `zone` reads `local` (seconds since 1970 as if
    /// the zone were UTC), as this expression fires for it: one, none or two following the
    /// clock; for a fixed time the first of two, or the moment a change forward skipped it.
    func instants(ofLocal local: Double, in zone: TimeZone) -> [Double] {
        let earlierOffset = Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: local - 50_400)))
        let laterOffset = Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: local + 50_400)))
        var found: [Double] = []
        for offset in Set([earlierOffset, laterOffset]).sorted(by: >) {
            let instant = local - offset
            if Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: instant))) == offset { found.append(instant) }
        }
        found.sort()
        if found.isEmpty {
            // Skipped by a change forward: a fixed time fires at the change.
            guard fixedTime,
                let change = zone.nextDaylightSavingTimeTransition(
                    after: Date(timeIntervalSince1970: local - earlierOffset - 86_400))
            else { return [] }
            return [change.timeIntervalSince1970]
        }
        return fixedTime ? [found[0]] : found
    }
}

/// Why a cron expression or an interval was refused.
public struct CronError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Days since 1970-01-01 to and from the proleptic Gregorian calendar (Howard Hinnant's
/// algorithms), without Foundation's calendar on the hot path of cron evaluation.
enum CivilDate {
    static func fields(day: Int) -> (year: Int, month: Int, day: Int) {
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let dayOfMonth = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, dayOfMonth)
    }

    /// 0 for Sunday.
    static func weekday(day: Int) -> Int {
        ((day % 7) + 11) % 7
    }
}

/// A schedule's interval (`every`): whole seconds, written as `90s`, `5m`, `1h30m`, `2d`, from
/// 1 s to 366 days (a longer period is a calendar rule, which is what `cron` is for).
public enum EveryInterval {
    /// The longest interval, in seconds: 366 days.
    public static let maximum = 366 * 86_400

    /// The interval in seconds, from 1 to `maximum`.
    public static func parse(_ text: String) throws(CronError) -> Int {
        var total = 0
        var number = ""
        var units = 0
        for character in text.trimmingCharacters(in: .whitespaces) {
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            let scale: Int
            switch character {
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3_600
            case "d": scale = 86_400
            default: throw CronError("\"\(text)\" must be a duration such as 30s, 5m, 1h or 1h30m")
            }
            guard let value = Int(number), number.count <= 9 else {
                throw CronError("\"\(text)\" must be a duration such as 30s, 5m, 1h or 1h30m")
            }
            total += value * scale
            guard total <= maximum else { throw CronError("\"\(text)\" must be at most 366d") }
            number = ""
            units += 1
        }
        guard number.isEmpty, units > 0 else { throw CronError("\"\(text)\" must be a duration such as 30s, 5m, 1h or 1h30m") }
        guard total >= 1 else { throw CronError("\"\(text)\" must be at least 1 s") }
        return total
    }
}
