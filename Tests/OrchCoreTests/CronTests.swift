import Foundation
import OrchCore
import OrchModels
import Testing

/// The cron evaluator against known instants: month ends, leap years, weekday rules and the
/// daylight-saving changes of a zone that has them.
@Suite struct CronTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let newYork = TimeZone(identifier: "America/New_York")!

    static func at(_ text: String) -> Date { Timestamp.parse(text)! }

    static func next(_ expression: String, after: String, in zone: TimeZone = utc) throws -> String? {
        try CronExpression(expression).next(after: at(after), in: zone).map(Timestamp.format)
    }

    /// The first `count` firings after `after`.
    static func series(_ expression: String, after: String, count: Int, in zone: TimeZone) throws -> [String] {
        let cron = try CronExpression(expression)
        var times: [String] = []
        var current = at(after)
        for _ in 0..<count {
            guard let next = cron.next(after: current, in: zone) else { break }
            times.append(Timestamp.format(next))
            current = next
        }
        return times
    }

    @Test(arguments: [
        ("*/15 * * * *", "2026-12-03T10:07:00Z", "2026-12-03T10:15:00.000Z"),
        ("*/15 * * * *", "2026-12-03T10:15:00Z", "2026-12-03T10:30:00.000Z"),
        ("0 0 29 2 *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00.000Z"),
        ("0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00.000Z"),
        ("0 12 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T12:00:00.000Z"),
        ("@monthly", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00.000Z"),
        ("@yearly", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00.000Z"),
        ("@hourly", "2026-12-31T23:00:00Z", "2027-01-01T00:00:00.000Z"),
        ("@weekly", "2026-12-03T00:00:00Z", "2026-12-06T00:00:00.000Z"),
        ("0 9 * * mon-fri", "2026-12-04T10:00:00Z", "2026-12-07T09:00:00.000Z"),
        ("0 9 * * 7", "2026-12-04T10:00:00Z", "2026-12-06T09:00:00.000Z"),
        ("0 0 13 * fri", "2026-12-01T00:00:00Z", "2026-12-04T00:00:00.000Z"),
        ("0 0 13 * fri", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00.000Z"),
        ("30 4 1,15 jan-mar/2 *", "2026-01-15T05:00:00Z", "2026-03-01T04:30:00.000Z"),
        ("5-10/5 3 * * *", "2026-12-03T03:05:00Z", "2026-12-03T03:10:00.000Z"),
    ])
    func firesAtTheKnownInstants(expression: String, after: String, expected: String) throws {
        #expect(try Self.next(expression, after: after) == expected)
    }

    @Test func anImpossibleDateNeverFires() throws {
        #expect(try Self.next("0 0 30 2 *", after: "2026-01-01T00:00:00Z") == nil)
    }

    @Test func theZoneSetsTheWallClock() throws {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        #expect(try Self.next("0 9 * * *", after: "2026-12-03T00:00:00Z", in: Self.newYork) == "2026-12-03T14:00:00.000Z")
        #expect(try Self.next("0 9 * * *", after: "2026-07-01T00:00:00Z", in: Self.newYork) == "2026-07-01T13:00:00.000Z")
    }

    /// 8 March 2026, 02:00 EST becomes 03:00 EDT (07:00 UTC): a fixed 02:30 fires at the change,
    /// once; a clock-following expression skips the lost hour.
    @Test func aTimeSkippedByTheChangeForwardFiresAtTheChange() throws {
        #expect(
            try Self.series("30 2 * * *", after: "2026-03-07T12:00:00Z", count: 3, in: Self.newYork)
                == ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z", "2026-03-10T06:30:00.000Z"])
        #expect(
            try Self.series("*/30 * * * *", after: "2026-03-08T06:00:00Z", count: 3, in: Self.newYork)
                == ["2026-03-08T06:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T07:30:00.000Z"])
        #expect(
            try Self.series("15 * * * *", after: "2026-03-08T06:00:00Z", count: 2, in: Self.newYork)
                == ["2026-03-08T06:15:00.000Z", "2026-03-08T07:15:00.000Z"])
    }

    /// 1 November 2026, 02:00 EDT becomes 01:00 EST (06:00 UTC): a fixed 01:30 fires once, at its
    /// first occurrence; a clock-following expression fires in both passes of the hour.
    @Test func aTimeRepeatedByTheChangeBackFiresOnce() throws {
        #expect(
            try Self.series("30 1 * * *", after: "2026-11-01T04:00:00Z", count: 2, in: Self.newYork)
                == ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
        #expect(
            try Self.series("30 * * * *", after: "2026-11-01T04:00:00Z", count: 4, in: Self.newYork)
                == ["2026-11-01T04:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-01T06:30:00.000Z", "2026-11-01T07:30:00.000Z"])
    }

    @Test(arguments: [
        "61 * * * *", "* * * *", "* * * * * *", "@reboot", "*/0 * * * *", "5-1 * * * *", "* 24 * * *", "* * 0 * *",
        "* * * 13 *", "* * * * 8", "* * * foo *", "a * * * *", "1,,2 * * * *", "",
    ])
    func invalidExpressionsAreRefused(expression: String) {
        #expect(throws: CronError.self) { try CronExpression(expression) }
    }

    @Test(arguments: [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172_800), ("1s", 1), ("366d", 31_622_400), ("365d23h59m60s", 31_622_400)])
    func intervalsParse(text: String, seconds: Int) throws {
        #expect(try EveryInterval.parse(text) == seconds)
    }

    @Test(arguments: ["0s", "", "5", "m", "5x", "-5m", "1y", "0d0s", "367d", "366d1s", "999999999d"])
    func badIntervalsAreRefused(text: String) {
        #expect(throws: CronError.self) { try EveryInterval.parse(text) }
    }
}
