import Foundation
import OrchCore
import OrchModels
import Testing

@Suite struct TimestampTests {
    @Test func formatsUTCWithMillisecondsAndReadsBothForms() throws {
        let date = Date(timeIntervalSince1970: 1_705_314_600.123_4)
        #expect(Timestamp.format(date) == "2024-01-15T10:30:00.123Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_705_314_600)) == "2024-01-15T10:30:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_705_314_600.9996)) == "2024-01-15T10:30:01.000Z")
        #expect(Timestamp.parse("2024-01-15T10:30:00Z") == Date(timeIntervalSince1970: 1_705_314_600))
        let parsed = try #require(Timestamp.parse("2024-01-15T10:30:00.123Z"))
        #expect(abs(parsed.timeIntervalSince1970 - 1_705_314_600.123) < 0.000_5)
        #expect(Timestamp.parse("yesterday") == nil)
    }

    @Test func formattedValueReparsesToTheSameMillisecond() throws {
        for _ in 0..<1000 {
            let date = Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000))
            let text = Timestamp.format(date)
            let again = try #require(Timestamp.parse(text))
            #expect(Timestamp.format(again) == text)
        }
    }

    /// Every RFC 3339 form (what OpenAPI's `date-time` means), checked against Foundation's
    /// calendar arithmetic; impossible dates and other shapes are refused.
    @Test func readsRFC3339DateTimes() throws {
        #expect(Timestamp.parse("2024-01-15t10:30:00z") == Date(timeIntervalSince1970: 1_705_314_600))
        #expect(Timestamp.parse("2024-01-15T12:30:00+02:00") == Date(timeIntervalSince1970: 1_705_314_600))
        #expect(Timestamp.parse("2529-10-02T00:07:28-23:25") == Date(timeIntervalSince1970: 17_664_132_748))
        #expect(Timestamp.parse("2000-02-29T00:00:00Z") == Date(timeIntervalSince1970: 951_782_400))
        #expect(Timestamp.parse("1969-12-31T23:59:59.5Z") == Date(timeIntervalSince1970: -0.5))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: Double(Int.random(in: -5_000_000_000...20_000_000_000)))
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let text = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
                parts.second!)
            #expect(Timestamp.parse(text) == date, "\(text)")
        }
        for bad in [
            "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T10:30:00",
            "2024-01-15 10:30:00Z", "2024-01-15T10:30:00.Z", "2024-01-15T10:30:00+24:00", "2024-01-15T10:30:00Zjunk", "",
        ] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct IdentifierTests {
    @Test func identifiersAreVersion7UUIDsInCreationOrder() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000.123)
        var previous = ""
        for step in 0..<200 {
            let now = start.addingTimeInterval(Double(step))
            let id = Identifier.make("task", now: now)
            #expect(id.hasPrefix("task-"))
            let uuid = try #require(UUID(uuidString: String(id.dropFirst(5))))
            #expect(uuid.uuidString.lowercased() == String(id.dropFirst(5)))
            let text = String(id.dropFirst(5))
            #expect(Array(text)[14] == "7", "version nibble")
            #expect("89ab".contains(Array(text)[19]), "variant bits")
            // The first 48 bits are the milliseconds.
            let millis = UInt64(text.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)
            #expect(millis == UInt64(now.timeIntervalSince1970 * 1000))
            #expect(id > previous)
            previous = id
        }
        #expect(Set((0..<1000).map { _ in Identifier.make("x", now: start) }).count == 1000)
    }
}
