import Foundation
import HummingbirdTesting
import OrchModels
import OrchStore
import Testing

@testable import OrchServer

@Suite struct HealthTests {
    @Test func healthIsPublicAndAnswersTheReferenceShape() async throws {
        try await TestServer.withApp { api in
            _ = try await api.request(.get, "/nowhere")
            let response = try await api.request(.get, "/health")
            #expect(response.status == .ok)
            let report = try response.decode(HealthReport.self)
            #expect(report.status == .healthy)
            #expect(report.version == OrchVersion.current)
            #expect(report.components == ["database": .healthy, "lock_manager": .healthy, "monitor": .healthy, "security": .healthy])
            #expect(report.metrics.totalRequests == 2)
            #expect(report.metrics.activeTasks == 0 && report.metrics.activeLocks == 0)
            #expect(report.metrics.uptimeSeconds >= 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            #expect(Set(object.keys) == ["status", "timestamp", "version", "components", "metrics"])
        }
    }

    @Test func healthIs503WhenTheDatabaseIsUnavailable() async throws {
        let store = try SQLiteStore(location: .sqliteMemory)
        try await TestServer.withApp(store: store) { api in
            #expect(try await api.request(.get, "/health").status == .ok)
            try await store.close()
            let response = try await api.request(.get, "/health")
            #expect(response.status == .serviceUnavailable)
            let report = try response.decode(HealthReport.self)
            #expect(report.status == .unhealthy)
            #expect(report.components["database"] == .unhealthy)
            #expect(report.components["security"] == .healthy)
        }
    }
}
