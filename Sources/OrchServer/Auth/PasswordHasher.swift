import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing, run on NIO's blocking thread pool so that a login never stalls the event
/// loops or Swift's cooperative threads (a cost-10 hash takes tens of milliseconds).
public struct PasswordHasher: Sendable {
    /// bcrypt cost (log2 of the rounds); at least 10.
    public let cost: Int
    /// A hash of a random password, checked when the username is unknown so that an unknown user
    /// and a wrong password take the same time.
    let decoyHash: String

    public init(cost: Int) {
        self.cost = cost
        self.decoyHash = Bcrypt.hash("decoy-\(UInt64.random(in: .min ... .max))", cost: UInt8(cost))
    }

    /// The bcrypt hash of `password`.
    public func hash(_ password: String) async throws -> String {
        let cost = UInt8(cost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash`; with `hash` nil, checks the decoy and returns false.
    public func verify(_ password: String, against hash: String?) async throws -> Bool {
        let target = hash ?? decoyHash
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: target) }
        return matches && hash != nil
    }
}
