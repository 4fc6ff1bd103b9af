import Foundation
import OrchModels

/// Validation of task requests, beyond what decoding checks.
public enum TaskRules {
    public static let coreIDLength = 1...128
    public static let priorities = 1...10
    public static let timeouts = 1...86_400
    public static let maxAttemptsRange = 1...100
    /// Metadata is at most 64 KiB as JSON.
    public static let maxMetadataBytes = 64 * 1024
    public static let progressRange = 0...100
    public static let workerIDLength = 1...128
    /// A status update's `message`, code points.
    public static let messageLength = 0...4096
    public static let claimWait = 0...60
    public static let leaseSeconds = 1...600
    public static let claimBatch = 1...100
    /// A dispatch's `delay`, seconds: up to one year. `run_at` may be as far ahead.
    public static let delays = 0...31_536_000
    /// A retry policy's intervals, seconds: up to a week.
    public static let retryIntervals = 0.0...604_800
    public static let backoffCoefficients = 1.0...100

    /// Checks a dispatch made at `now`; throws `INVALID_PARAMETER` naming the field.
    public static func validate(_ request: DispatchRequest, metadataBytes: Int, now: Date) throws(OrchError) {
        try validateCoreID(request.coreID, field: "coreId")
        try check(request.priority, in: priorities, field: "priority")
        try check(request.timeout, in: timeouts, field: "timeout")
        try check(request.maxAttempts, in: maxAttemptsRange, field: "max_attempts")
        if let delay = request.delay { try check(delay, in: delays, field: "delay") }
        if let policy = request.retryPolicy { try validate(policy, field: "retry_policy") }
        guard metadataBytes <= maxMetadataBytes else {
            throw .invalidParameter("metadata", "must be at most \(maxMetadataBytes) bytes as JSON")
        }
    }

    /// Checks a retry policy's ranges: intervals from 0 to a week, a coefficient from 1 to 100
    /// (a maximum below the initial interval counts as the initial one).
    public static func validate(_ policy: RetryPolicy, field: String) throws(OrchError) {
        for (name, value) in [("initial_interval", policy.initialInterval), ("maximum_interval", policy.maximumInterval)] {
            guard value.isFinite, retryIntervals.contains(value) else {
                throw .invalidParameter("\(field).\(name)", "must be a number of seconds from 0 to 604800")
            }
        }
        guard policy.backoffCoefficient.isFinite, backoffCoefficients.contains(policy.backoffCoefficient) else {
            throw .invalidParameter("\(field).backoff_coefficient", "must be a number from 1 to 100")
        }
    }

    /// Checks a core id: 1-128 characters of `[A-Za-z0-9_.:-]`.
    public static func validateCoreID(_ coreID: String, field: String) throws(OrchError) {
        guard TextRules.fits(coreID, codePoints: coreIDLength),
            coreID.unicodeScalars.allSatisfy({ scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", "_", ".", ":", "-": true
                default: false
                }
            })
        else {
            throw .invalidParameter(field, "must be 1 to 128 characters of letters, digits, '_', '.', ':' and '-'")
        }
    }

    /// Checks a status update's own fields, then normalizes its worker id to NFC (lengths are
    /// those of the text as sent, as the OpenAPI document states them).
    public static func validated(_ update: StatusUpdateRequest) throws(OrchError) -> StatusUpdateRequest {
        var update = update
        guard update.status != .queued, update.status != .scheduled else {
            throw .invalidParameter("status", "must be one of running, completed, failed, cancelled")
        }
        if let progress = update.progress { try check(progress, in: progressRange, field: "progress") }
        if let workerID = update.workerID { try validateWorkerID(workerID) }
        if let message = update.message { try TextRules.check(message, codePoints: messageLength, field: "message") }
        update.workerID = update.workerID?.nfc
        return update
    }

    /// Checks a claim request, then normalizes its worker id to NFC.
    public static func validated(_ claim: ClaimRequest) throws(OrchError) -> ClaimRequest {
        var claim = claim
        try validateWorkerID(claim.workerID)
        claim.workerID = claim.workerID.nfc
        try check(claim.wait, in: claimWait, field: "wait")
        try check(claim.lease, in: leaseSeconds, field: "lease")
        try check(claim.maxTasks, in: claimBatch, field: "max_tasks")
        return claim
    }

    /// Checks a heartbeat request, then normalizes its worker id to NFC.
    public static func validated(_ heartbeat: HeartbeatRequest) throws(OrchError) -> HeartbeatRequest {
        var heartbeat = heartbeat
        try validateWorkerID(heartbeat.workerID)
        heartbeat.workerID = heartbeat.workerID.nfc
        if let lease = heartbeat.lease { try check(lease, in: leaseSeconds, field: "lease") }
        return heartbeat
    }

    static func validateWorkerID(_ workerID: String) throws(OrchError) {
        try TextRules.check(workerID, codePoints: workerIDLength, field: "worker_id")
    }

    public static func check(_ value: Int, in range: ClosedRange<Int>, field: String) throws(OrchError) {
        guard range.contains(value) else {
            throw .invalidParameter(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }
}
