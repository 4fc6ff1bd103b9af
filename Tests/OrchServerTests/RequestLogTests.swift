import Foundation
import HTTPTypes
import Logging
import OrchModels
import Synchronization
import OrchTestSupport
import Testing

@testable import OrchServer

/// Keeps every log record, for tests that read what the server logged.
final class CapturedLogs: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    var logger: Logger {
        Logger(label: "orch-test") { _ in Handler(logs: self) }
    }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            merged.merge(event.metadata ?? [:]) { _, new in new }
            let record = Record(
                level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" })
            logs.records.withLock { $0.append(record) }
        }
    }
}

@Suite struct RequestLogTests {
    @Test(arguments: TestBackend.all)
    func oneStructuredLinePerRequestAtInfo(backend: TestBackend) async throws {
        var configuration = TestServer.configuration()
        configuration.logLevel = .info
        let logs = CapturedLogs()
        try await TestServer.withServer(configuration, backend: backend, logger: logs.logger) { api, _ in
            let token = try await api.adminToken()
            let id = try await api.send(.post, "/dispatch", token: token, body: DispatchRequest(coreID: "logged"))
                .decode(DispatchResponse.self).taskID
            let response = try await api.request(
                .get, "/jobs/\(id)/events", token: token, headers: [HTTPField.Name("X-Request-ID")!: "trace-42"])
            #expect(response.status == .ok)
            #expect(try await api.request(.get, "/nowhere").status == .notFound)

            let requests = logs.all.filter { $0.message == "request" }
            #expect(requests.allSatisfy { $0.level == .info })
            let events = try #require(requests.first { $0.metadata["request_id"] == "trace-42" })
            #expect(events.metadata["method"] == "GET")
            #expect(events.metadata["route"] == "/jobs/{task_id}/events")
            #expect(events.metadata["status"] == "200")
            #expect(events.metadata["user"] == "admin")
            #expect(Double(events.metadata["duration_ms"] ?? "") != nil)
            let missing = try #require(requests.first { $0.metadata["route"] == "unmatched" })
            #expect(missing.metadata["status"] == "404" && missing.metadata["user"] == "-")
            // Credentials never reach the logs.
            for record in logs.all {
                #expect(!record.metadata.values.contains { $0.contains(token) } && !record.message.contains(token))
                #expect(!record.metadata.values.contains { $0.contains(TestServer.adminPassword) })
            }
        }
    }
}
