import Foundation
import OrchClient
import Testing

@Suite struct OrchClientErrorTests {
    @Test func decodesTheReferenceRateLimitEnvelope() {
        let body = Data(
            #"{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"Rate limit exceeded","details":{"limit":100,"window":60,"retry_after":30},"request_id":"req-123","timestamp":"2024-01-15T10:30:00Z"}}"#.utf8)
        let error = OrchClientError(status: 429, retryAfter: "30", body: body)
        #expect(error.code == "RATE_LIMIT_EXCEEDED")
        #expect(error.message == "Rate limit exceeded")
        #expect(error.requestID == "req-123")
        #expect(error.retryAfter == 30)
        #expect(error.body?.details["window"] == .int(60))
        #expect(error.description == "RATE_LIMIT_EXCEEDED: Rate limit exceeded (request req-123)")
    }

    @Test func nonEnvelopeBodyStillGivesStatus() {
        let error = OrchClientError(status: 502, body: Data("<html>bad gateway</html>".utf8))
        #expect(error.body == nil)
        #expect(error.code == "HTTP_502")
        #expect(error.retryAfter == nil)
    }
}
