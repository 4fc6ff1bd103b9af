import Foundation
import HummingbirdTesting
import OrchModels
import OrchStore
import OrchTestSupport
import Testing

@testable import OrchServer

@Suite struct HealthTests {
    @Test(arguments: TestBackend.all)
    func healthIsPublicAndAnswersTheReferenceShape(backend: TestBackend) async throws {
        try await TestServer.withApp(backend: backend) { api in
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
            // The reference's fields, and the node that answered (several nodes share a database).
            #expect(Set(object.keys) == ["status", "timestamp", "version", "components", "metrics", "node"])
            // SQLite has no other nodes to hear; on PostgreSQL the listener may still be connecting.
            #expect((report.node?.listener == HealthReport.Node.Listener.none) == (backend == .sqlite))
            #expect(report.node?.id.hasPrefix("node-") == true)
        }
    }

    @Test(arguments: TestBackend.all)
    func healthIs503WhenTheDatabaseIsUnavailable(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let store = try await database.open()
            try await TestServer.withApp(backend: backend, store: store) { api in
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
}
