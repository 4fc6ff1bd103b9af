import OrchCore
import Testing

@Suite struct RateLimiterTests {
    @Test func allowsTheLimitThenRefusesWithRetryAfter() {
        let limiter = RateLimiter(window: 60)
        var remaining: [Int] = []
        for _ in 0..<10 {
            let decision = limiter.check(key: "u", limit: 10, now: 1000)
            #expect(decision.allowed)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
        let refused = limiter.check(key: "u", limit: 10, now: 1000)
        #expect(!refused.allowed && refused.remaining == 0)
        #expect(abs(refused.retryAfter - 6) < 1e-9)  // one request is worth 60/10 s
        #expect(abs(refused.resetAfter - 60) < 1e-9)
        #expect(limiter.check(key: "u", limit: 10, now: 1005.9).allowed == false)
        #expect(limiter.check(key: "u", limit: 10, now: 1006).allowed)
        #expect(limiter.check(key: "other", limit: 10, now: 1006).remaining == 9)
    }

    /// A client pacing itself at the limit is never refused, and no edge of a minute lets it
    /// through faster than that after its initial allowance.
    @Test func steadyPaceAtTheLimitIsAlwaysAllowedAndNoEdgeBurst() {
        let limiter = RateLimiter(window: 60)
        for step in 0..<600 {
            #expect(limiter.check(key: "steady", limit: 100, now: Double(step) * 0.6).allowed)
        }
        // Exhaust the allowance, then at a minute boundary only one request's worth comes back.
        let burst = RateLimiter(window: 60)
        var allowed = 0
        for _ in 0..<200 where burst.check(key: "b", limit: 100, now: 59.9).allowed { allowed += 1 }
        #expect(allowed == 100)
        var afterEdge = 0
        for _ in 0..<200 where burst.check(key: "b", limit: 100, now: 60.1).allowed { afterEdge += 1 }
        #expect(afterEdge == 0)
        #expect(burst.check(key: "b", limit: 100, now: 60.5).allowed)
    }

    @Test func zeroMeansUnlimited() {
        let limiter = RateLimiter()
        for _ in 0..<10_000 { #expect(limiter.check(key: "x", limit: 0, now: 0).allowed) }
        #expect(limiter.trackedKeys == 0)
    }

    @Test func memoryStaysBoundedHoweverManyKeysAppear() {
        let limiter = RateLimiter(window: 60, capacity: 1000)
        for index in 0..<50_000 {
            _ = limiter.check(key: "client-\(index)", limit: 100, now: Double(index) * 0.001)
        }
        #expect(limiter.trackedKeys <= 1000)
    }
}
