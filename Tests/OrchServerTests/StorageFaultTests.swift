import AsyncHTTPClient
import Foundation
import OrchModels
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The storage under a running server fails: the disk fills up, or the database file is deleted.
@Suite(.serialized) struct StorageFaultTests {
    static let adminPassword = "storage-admin-password"

    /// Whether this process may mount a tmpfs (root, and a kernel that lets it).
    static let canMountTmpfs: Bool = {
        guard getuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("orch-mount-probe-\(getpid())")
        try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: probe) }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]) == 0 else { return false }
        return run("/bin/umount", [probe.path]) == 0
    }()

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        return ServerProcess.exited(process, within: 30) ? process.terminationStatus : -1
    }

    func token(_ server: ServerProcess) async throws -> String {
        let response = try await HTTPClient.shared.json(
            .POST, "\(server.baseURL)/auth/login", body: #"{"username":"admin","password":"\#(Self.adminPassword)"}"#)
        return try Timestamp.makeDecoder().decode(LoginResponse.self, from: response.body).accessToken
    }

    func dispatch(_ server: ServerProcess, _ token: String, padding: Int = 0) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.json(
            .POST, "\(server.baseURL)/dispatch", token: token,
            body: #"{"coreId":"disk","metadata":{"pad":"\#(String(repeating: "x", count: padding))"}}"#)
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    func health(_ server: ServerProcess) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.json(.GET, "\(server.baseURL)/health")
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs; skipped"))
    func aFullDiskAnswers503AndReportsTheDatabaseUnhealthyUntilSpaceIsBack() async throws {
        let mount = FileManager.default.temporaryDirectory.appendingPathComponent("orch-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        #expect(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount.path]) == 0)
        defer {
            Self.run("/bin/umount", ["-l", mount.path])
            try? FileManager.default.removeItem(at: mount)
        }
        let server = try await ServerProcess.start(environment: [
            "ORCH_DATABASE_URL": "sqlite://\(mount.appendingPathComponent("full.sqlite").path)",
            "ORCH_ADMIN_PASSWORD": Self.adminPassword, "ORCH_RATE_LIMITS": "admin=0,anonymous=0",
            "ORCH_LOG_LEVEL": "critical",
        ])
        let token = try await token(server)
        #expect(try await dispatch(server, token).status == 202)

        // Fill what is left of the disk.
        let filler = mount.appendingPathComponent("filler")
        FileManager.default.createFile(atPath: filler.path, contents: nil)
        let handle = try FileHandle(forWritingTo: filler)
        let block = Data(repeating: 0xAB, count: 64 * 1024)
        while (try? handle.write(contentsOf: block)) != nil {}
        try? handle.close()

        var statuses: [Int] = []
        var refusal = ""
        for _ in 0..<200 {
            let (status, body) = try await dispatch(server, token, padding: 30_000)
            statuses.append(status)
            if status == 503 {
                refusal = body
                break
            }
        }
        #expect(statuses.last == 503, "\(statuses)")
        #expect(!statuses.contains(500))
        #expect(refusal.contains(#""code":"SERVICE_UNAVAILABLE""#) && refusal.contains("storage_full"), "\(refusal)")
        let unhealthy = try await health(server)
        #expect(unhealthy.status == 503 && unhealthy.body.contains(#""database":"unhealthy""#), "\(unhealthy)")

        try FileManager.default.removeItem(at: filler)
        var recovered = false
        for _ in 0..<50 where !recovered {
            recovered = try await health(server).status == 200
            if !recovered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(recovered)
        #expect(try await dispatch(server, token).status == 202)
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }

    /// Deleting the database file and its WAL under the server: every write is refused with
    /// 503 instead of being acknowledged into a file nobody will open again.
    @Test func aDeletedDatabaseFileRefusesWritesAndFailsHealth() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-gone-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("gone.sqlite").path
        let server = try await ServerProcess.start(environment: [
            "ORCH_DATABASE_URL": "sqlite://\(path)", "ORCH_ADMIN_PASSWORD": Self.adminPassword,
            "ORCH_RATE_LIMITS": "admin=0,anonymous=0", "ORCH_LOG_LEVEL": "critical",
        ])
        let token = try await token(server)
        #expect(try await dispatch(server, token).status == 202)
        #expect(try await health(server).status == 200)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        var acknowledged = 0
        for _ in 0..<10 {
            let (status, body) = try await dispatch(server, token)
            if status == 202 { acknowledged += 1 }
            #expect(status == 503 && body.contains("database_file_replaced"), "\(status) \(body)")
        }
        #expect(acknowledged == 0)
        let health = try await health(server)
        #expect(health.status == 503 && health.body.contains(#""database":"unhealthy""#))
        #expect(await server.stopped(signal: SIGTERM) == 0)
    }
}
