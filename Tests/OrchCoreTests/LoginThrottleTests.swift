import OrchCore
import Testing

@Suite struct LoginThrottleTests {
    func locking(_ name: String) -> LoginThrottle.Key { .init(name, locks: true) }

    @Test func slowsDownThenRefusesThenLetsGoAgain() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        let keys = LoginThrottle.keys(username: "Alice", address: "10.0.0.1")
        for step in 0..<3 {
            #expect(throttle.verdict(keys: keys, now: Double(step)) == .proceed(delay: 0))
            throttle.recordFailure(keys: keys, now: Double(step))
        }
        #expect(throttle.verdict(keys: keys, now: 3) == .proceed(delay: 0.25))
        throttle.recordFailure(keys: keys, now: 3)
        #expect(throttle.verdict(keys: keys, now: 4) == .proceed(delay: 0.5))
        throttle.recordFailure(keys: keys, now: 4)
        // Five failures: the pair is refused for 2^0 s after the last one, then slowed to the maximum.
        #expect(throttle.verdict(keys: keys, now: 4.5) == .refuse(retryAfter: 0.5))
        #expect(throttle.verdict(keys: keys, now: 5) == .proceed(delay: 2))
        throttle.recordFailure(keys: keys, now: 5)
        #expect(throttle.verdict(keys: keys, now: 6) == .refuse(retryAfter: 1))
        // The same username from another address, or another username from this address, is
        // slowed down but never locked out.
        #expect(throttle.verdict(keys: LoginThrottle.keys(username: "alice", address: "10.0.0.2"), now: 6) == .proceed(delay: 2))
        #expect(throttle.verdict(keys: LoginThrottle.keys(username: "someone", address: "10.0.0.1"), now: 6) == .proceed(delay: 2))
    }

    @Test func lockoutIsCappedAndASuccessResets() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        let bob = [locking("pair:bob|x")]
        for step in 0..<40 { throttle.recordFailure(keys: bob, now: Double(step)) }
        guard case .refuse(let retryAfter) = throttle.verdict(keys: bob, now: 39) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(retryAfter == 60)
        #expect(throttle.verdict(keys: bob, now: 99) == .proceed(delay: 2))
        // Another user from elsewhere is not affected.
        #expect(throttle.verdict(keys: [locking("pair:carol|y")], now: 40) == .proceed(delay: 0))
        throttle.recordSuccess(keys: bob)
        #expect(throttle.verdict(keys: bob, now: 40) == .proceed(delay: 0))
    }

    @Test func failuresAreForgottenAndMemoryIsBounded() {
        let throttle = LoginThrottle(slowAfter: 1, refuseAfter: 100, forgetAfter: 10, capacity: 100)
        throttle.recordFailure(keys: [locking("user:dave")], now: 0)
        #expect(throttle.verdict(keys: [locking("user:dave")], now: 5) == .proceed(delay: 0.25))
        #expect(throttle.verdict(keys: [locking("user:dave")], now: 11) == .proceed(delay: 0))
        for index in 0..<10_000 { throttle.recordFailure(keys: [locking("address:\(index)")], now: 20) }
        #expect(throttle.trackedKeys <= 100)
    }
}
