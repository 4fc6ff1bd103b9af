import OrchCore
import Testing

@Suite struct LoginThrottleTests {
    @Test func slowsDownThenRefusesThenLetsGoAgain() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        let keys = ["user:alice", "address:10.0.0.1"]
        for step in 0..<3 {
            #expect(throttle.verdict(keys: keys, now: Double(step)) == .proceed(delay: 0))
            throttle.recordFailure(keys: keys, now: Double(step))
        }
        #expect(throttle.verdict(keys: keys, now: 3) == .proceed(delay: 0.25))
        throttle.recordFailure(keys: keys, now: 3)
        #expect(throttle.verdict(keys: keys, now: 4) == .proceed(delay: 0.5))
        throttle.recordFailure(keys: keys, now: 4)
        // Five failures: refused for 2^0 s after the last one, then slowed to the maximum.
        #expect(throttle.verdict(keys: keys, now: 4.5) == .refuse(retryAfter: 0.5))
        #expect(throttle.verdict(keys: keys, now: 5) == .proceed(delay: 2))
        throttle.recordFailure(keys: keys, now: 5)
        #expect(throttle.verdict(keys: keys, now: 6) == .refuse(retryAfter: 1))
        // The address alone is throttled too, for any username.
        #expect(throttle.verdict(keys: ["user:someone", "address:10.0.0.1"], now: 6) == .refuse(retryAfter: 1))
    }

    @Test func lockoutIsCappedAndASuccessResets() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        for step in 0..<40 { throttle.recordFailure(keys: ["user:bob"], now: Double(step)) }
        guard case .refuse(let retryAfter) = throttle.verdict(keys: ["user:bob"], now: 39) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(retryAfter == 60)
        #expect(throttle.verdict(keys: ["user:bob"], now: 99) == .proceed(delay: 2))
        // Another user from elsewhere is not affected.
        #expect(throttle.verdict(keys: ["user:carol", "address:x"], now: 40) == .proceed(delay: 0))
        throttle.recordSuccess(keys: ["user:bob"])
        #expect(throttle.verdict(keys: ["user:bob"], now: 40) == .proceed(delay: 0))
    }

    @Test func failuresAreForgottenAndMemoryIsBounded() {
        let throttle = LoginThrottle(slowAfter: 1, refuseAfter: 100, forgetAfter: 10, capacity: 100)
        throttle.recordFailure(keys: ["user:dave"], now: 0)
        #expect(throttle.verdict(keys: ["user:dave"], now: 5) == .proceed(delay: 0.25))
        #expect(throttle.verdict(keys: ["user:dave"], now: 11) == .proceed(delay: 0))
        for index in 0..<10_000 { throttle.recordFailure(keys: ["address:\(index)"], now: 20) }
        #expect(throttle.trackedKeys <= 100)
    }
}
