import OrchCore
import Testing

@Suite struct LoginThrottleTests {
    func locking(_ name: String) -> LoginThrottle.Key { .init(name, locks: true) }

    /// Failures as the store keeps them: counted per key, started again after `forgetAfter`.
    struct Log {
        var records: [String: LoginThrottle.Record] = [:]
        let forgetAfter: Double

        mutating func fail(_ keys: [LoginThrottle.Key], at now: Double) {
            for key in keys {
                var record = records[key.name] ?? .init(failures: 0, lastFailure: now)
                if now - record.lastFailure >= forgetAfter { record.failures = 0 }
                record.failures += 1
                record.lastFailure = now
                records[key.name] = record
            }
        }
    }

    @Test func slowsDownThenRefusesThenLetsGoAgain() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        var log = Log(forgetAfter: 900)
        let keys = LoginThrottle.keys(username: "Alice", address: "10.0.0.1")
        func verdict(_ keys: [LoginThrottle.Key], _ now: Double) -> LoginThrottle.Verdict {
            throttle.verdict(keys: keys, records: log.records, now: now)
        }
        for step in 0..<3 {
            #expect(verdict(keys, Double(step)) == .proceed(delay: 0))
            log.fail(keys, at: Double(step))
        }
        #expect(verdict(keys, 3) == .proceed(delay: 0.25))
        log.fail(keys, at: 3)
        #expect(verdict(keys, 4) == .proceed(delay: 0.5))
        log.fail(keys, at: 4)
        // Five failures: the pair is refused for 2^0 s after the last one, then slowed to the maximum.
        #expect(verdict(keys, 4.5) == .refuse(retryAfter: 0.5))
        #expect(verdict(keys, 5) == .proceed(delay: 2))
        log.fail(keys, at: 5)
        #expect(verdict(keys, 6) == .refuse(retryAfter: 1))
        // The same username from another address, or another username from this address, is
        // slowed down but never locked out.
        #expect(verdict(LoginThrottle.keys(username: "alice", address: "10.0.0.2"), 6) == .proceed(delay: 2))
        #expect(verdict(LoginThrottle.keys(username: "someone", address: "10.0.0.1"), 6) == .proceed(delay: 2))
    }

    @Test func lockoutIsCappedAndFailuresAreForgotten() {
        let throttle = LoginThrottle(slowAfter: 3, refuseAfter: 5, maximumLockout: 60, forgetAfter: 900)
        var log = Log(forgetAfter: 900)
        let bob = [locking("pair:bob|x")]
        for step in 0..<40 { log.fail(bob, at: Double(step)) }
        guard case .refuse(let retryAfter) = throttle.verdict(keys: bob, records: log.records, now: 39) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(retryAfter == 60)
        #expect(throttle.verdict(keys: bob, records: log.records, now: 99) == .proceed(delay: 2))
        // Another user from elsewhere is not affected; failures older than forgetAfter count for nothing.
        #expect(throttle.verdict(keys: [locking("pair:carol|y")], records: log.records, now: 40) == .proceed(delay: 0))
        #expect(throttle.verdict(keys: bob, records: log.records, now: 39 + 900) == .proceed(delay: 0))
    }
}
