import Crypto
import Foundation
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
        let input = Self.bcryptInput(password)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    /// Whether `password` matches `hash`; with `hash` nil, checks the decoy and returns false.
    public func verify(_ password: String, against hash: String?) async throws -> Bool {
        let target = hash ?? decoyHash
        let input = Self.bcryptInput(password)
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: target) }
        return matches && hash != nil
    }

    /// What bcrypt hashes for `password`: the password itself when it fits bcrypt's 72 bytes
    /// (every hash made before longer ones were allowed still verifies), else `sha256:` and the
    /// base64 of its SHA-256 (51 bytes), so that no byte past the 72nd is ignored. The one other
    /// password with the same hash is that 51-byte string itself, which only someone who
    /// knows the long password's digest can write.
    static func bcryptInput(_ password: String) -> String {
        let bytes = Array(password.utf8)
        guard bytes.count > 72 else { return password }
        return "sha256:" + Data(SHA256.hash(data: bytes)).base64EncodedString()
    }
}
