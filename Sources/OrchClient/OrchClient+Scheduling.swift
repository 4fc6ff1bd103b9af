import AsyncHTTPClient
import Foundation
import NIOHTTP1
import OrchModels

/// Retries, bulk actions, cores and schedules.
extension OrchClient {
    // MARK: Retries and bulk actions

    /// Puts a failed or cancelled task back in the queue with a fresh attempt budget.
    public func retryTask(id: String) async throws -> OrchTask {
        try await send(.POST, "/tasks/\(Self.escape(id))/retry", body: [String: String]())
    }

    /// Cancels every task matching `request` (or, with `dryRun`, counts them).
    public func cancelTasks(_ request: BulkTaskRequest) async throws -> BulkTaskResponse {
        try await send(.POST, "/tasks/cancel", body: request)
    }

    /// Retries every failed or cancelled task matching `request` (or, with `dryRun`, counts them).
    public func retryTasks(_ request: BulkTaskRequest) async throws -> BulkTaskResponse {
        try await send(.POST, "/tasks/retry", body: request)
    }

    // MARK: Cores

    /// Every core, with its counts, settings and workers.
    public func cores() async throws -> [CoreInfo] {
        let list: CoreList = try await send(.GET, "/cores")
        return list.cores
    }

    public func core(id: String) async throws -> CoreInfo { try await send(.GET, "/cores/\(Self.escape(id))") }

    /// Pauses or resumes a core, or sets its running cap (`.some(nil)` removes it).
    public func updateCore(id: String, _ request: CoreUpdateRequest) async throws -> CoreInfo {
        try await send(.PATCH, "/cores/\(Self.escape(id))", body: request)
    }

    // MARK: Schedules

    public func createSchedule(_ request: CreateScheduleRequest) async throws -> Schedule {
        try await send(.POST, "/schedules", body: request)
    }

    public func schedules(limit: Int = 50, offset: Int = 0) async throws -> ScheduleList {
        try await send(.GET, "/schedules", query: [("limit", String(limit)), ("offset", String(offset))])
    }

    public func schedule(id: String) async throws -> Schedule { try await send(.GET, "/schedules/\(Self.escape(id))") }

    public func updateSchedule(id: String, _ request: UpdateScheduleRequest) async throws -> Schedule {
        try await send(.PATCH, "/schedules/\(Self.escape(id))", body: request)
    }

    public func deleteSchedule(id: String) async throws {
        _ = try await raw(.DELETE, "/schedules/\(Self.escape(id))")
    }
}
