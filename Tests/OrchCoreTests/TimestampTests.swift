import Foundation
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
}
