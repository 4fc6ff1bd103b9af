import Foundation
import OrchModels

/// Where a stored lock stands; the raw values are what the store and the API say.
public enum LockState: String, Sendable, Hashable, CaseIterable {
    /// Someone holds it (its TTL may have run out without the expiry being processed yet).
    case held
    /// Its TTL ran out and it was released (kept for an hour for `GET /locks?expired=true`).
    case expired
}

/// A lock as stored.
public struct LockRecord: Sendable, Hashable {
    public var lockID: String
    public var resource: String
    public var owner: String
    public var priority: Int
    public var ttl: Int
    public var fencingToken: Int64
    public var acquiredAt: Date
    public var expiresAt: Date
    public var state: LockState

    public init(
        lockID: String, resource: String, owner: String, priority: Int, ttl: Int, fencingToken: Int64, acquiredAt: Date,
        expiresAt: Date, state: LockState = .held
    ) {
        self.lockID = lockID
        self.resource = resource
        self.owner = owner
        self.priority = priority
        self.ttl = ttl
        self.fencingToken = fencingToken
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
        self.state = state
    }

    public var grant: LockGrant {
        LockGrant(
            resource: resource, owner: owner, acquiredAt: acquiredAt, expiresAt: expiresAt, lockID: lockID,
            fencingToken: fencingToken)
    }

    public func info(now: Date) -> LockInfo {
        LockInfo(
            resource: resource, owner: owner, priority: priority, ttl: ttl, acquiredAt: acquiredAt, expiresAt: expiresAt,
            remainingTTL: max(0, Int(expiresAt.timeIntervalSince(now).rounded(.up))), lockID: lockID,
            fencingToken: fencingToken, status: state.rawValue)
    }
}

/// Validation of lock requests.
public enum LockRules {
    public static let resourceLength = 1...256
    public static let ownerLength = 1...128
    public static let ttlRange = 1...86_400
    public static let timeoutRange = 0...300

    /// Checks a lock request (lengths of the text as sent), then normalizes its resource and
    /// owner to NFC, so that one name typed either way is one lock and one owner.
    public static func validated(_ request: AcquireLockRequest) throws(OrchError) -> AcquireLockRequest {
        var request = request
        try TextRules.check(request.resource, codePoints: resourceLength, field: "resource")
        try TextRules.check(request.owner, codePoints: ownerLength, field: "owner")
        request.resource = request.resource.nfc
        request.owner = request.owner.nfc
        try TaskRules.check(request.ttl, in: ttlRange, field: "ttl")
        try TaskRules.check(request.priority, in: TaskRules.priorities, field: "priority")
        try TaskRules.check(request.timeout, in: timeoutRange, field: "timeout")
        return request
    }
}
