import AsyncHTTPClient
import Foundation
import OrchClient
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// HTTPS (`ORCH_TLS_CERT`, `ORCH_TLS_KEY`) with certificates openssl makes for 127.0.0.1: a
/// private CA signing an EC server key, and a self-signed RSA one; the command line, the
/// worker and OrchClient trusting the CA with `--cacert` / `ORCH_CA_CERT`.
@Suite struct TLSTests {
    /// A folder with `ca.pem`, `ec.pem` + `ec.key` (signed by the CA), `rsa.pem` + `rsa.key`
    /// (self-signed), all for IP 127.0.0.1.
    static func withCertificates(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = """
            set -e
            cd "$1"
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > server.ext
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=orch-test-ca 2>/dev/null
            openssl ecparam -name prime256v1 -genkey -noout -out ec.key
            openssl req -new -key ec.key -out ec.csr -subj /CN=127.0.0.1 2>/dev/null
            openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ec.pem -days 2 -extfile server.ext 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 2 -subj /CN=127.0.0.1 \
              -addext subjectAltName=IP:127.0.0.1 2>/dev/null
            """
        let made = try await ScriptRunner.run(["sh", "-c", script, "make-certificates", directory.path])
        try #require(made.status == 0, "openssl: \(made.errors)")
        try await body(directory)
    }

    static func orch(_ arguments: [String], home: URL, environment: [String: String] = [:]) async throws -> ScriptRunner.Result {
        try await CommandLineTests.orch(arguments, home: home, environment: environment)
    }

    @Test func theCommandLineTheWorkerAndTheClientSpeakHTTPSTrustingAPrivateCA() async throws {
        try await Self.withCertificates { directory in
            try await LiveProcessTests.withDatabase(.sqlite) { database in
                let server = try await ServerProcess.start(environment: [
                    "ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": LiveProcessTests.adminPassword,
                    "ORCH_TLS_CERT": directory.appendingPathComponent("ec.pem").path,
                    "ORCH_TLS_KEY": directory.appendingPathComponent("ec.key").path,
                ])
                let url = "https://127.0.0.1:\(server.port)"
                let ca = directory.appendingPathComponent("ca.pem").path
                let home = try CommandLineTests.temporaryHome()
                defer { try? FileManager.default.removeItem(at: home) }

                // Not trusted without the CA: the command cannot reach the server.
                let untrusted = try await Self.orch(
                    ["tasks", "--url", url, "--token", "t", "--request-timeout", "3"], home: home)
                #expect(untrusted.status == 69, "\(untrusted.errors)")
                let login = try await Self.orch(
                    ["login", "--url", url, "--username", "admin", "--cacert", ca], home: home,
                    environment: ["ORCH_PASSWORD": LiveProcessTests.adminPassword])
                #expect(login.status == 0, "\(login.errors)")
                let dispatched = try await Self.orch(["dispatch", "secure"], home: home, environment: ["ORCH_CA_CERT": ca])
                #expect(dispatched.status == 0, "\(dispatched.errors)")
                let id = dispatched.output.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(id.hasPrefix("task-"))

                // A worker over HTTPS finishes it.
                let stored = try JSONSerialization.jsonObject(
                    with: Data(contentsOf: home.appendingPathComponent("orch/credentials.json"))) as? [String: String]
                let token = try #require(stored?["token"])
                let worker = Process()
                worker.executableURL = ServerProcess.executable
                worker.arguments = [
                    "worker", "--core", "secure", "--url", url, "--token", token, "--cacert", ca, "--", "/bin/sh", "-c",
                    #"echo '{"over":"https"}'"#,
                ]
                worker.standardOutput = FileHandle.nullDevice
                worker.standardError = FileHandle.nullDevice
                try worker.run()
                defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }

                // OrchClient trusting the CA sees the task completed.
                let http = try OrchClient.httpClient(trustingCertificatesIn: ca)
                let client = OrchClient(baseURL: url, token: token, httpClient: http)
                var task = try await client.task(id: id)
                let deadline = ContinuousClock.now + .seconds(30)
                while task.status != .completed, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    task = try await client.task(id: id)
                }
                #expect(task.status == .completed)
                #expect(task.result?["over"] == "https")
                kill(worker.processIdentifier, SIGTERM)
                _ = ServerProcess.exited(worker, within: 15)
                try await http.shutdown()

                // The port speaks HTTPS only: a plain HTTP request gets no HTTP answer.
                let plain = try? await HTTPClient.shared.json(.GET, "http://127.0.0.1:\(server.port)/health")
                #expect(plain == nil || plain?.status != 200)
                #expect(await server.stopped(signal: SIGTERM) == 0)
            }
        }
    }

    @Test func anRSAKeyServesToo() async throws {
        try await Self.withCertificates { directory in
            try await LiveProcessTests.withDatabase(.sqlite) { database in
                let server = try await ServerProcess.start(environment: [
                    "ORCH_DATABASE_URL": database.url, "ORCH_ADMIN_PASSWORD": LiveProcessTests.adminPassword,
                    "ORCH_TLS_CERT": directory.appendingPathComponent("rsa.pem").path,
                    "ORCH_TLS_KEY": directory.appendingPathComponent("rsa.key").path,
                ])
                let http = try OrchClient.httpClient(trustingCertificatesIn: directory.appendingPathComponent("rsa.pem").path)
                let health = try await OrchClient(baseURL: "https://127.0.0.1:\(server.port)", httpClient: http).health()
                #expect(health.status == .healthy)
                try await http.shutdown()
                #expect(await server.stopped(signal: SIGTERM) == 0)
            }
        }
    }

    /// A missing file, a file that is not PEM, a key of another certificate, or one setting
    /// without the other: one line naming the setting, exit 64, nothing listening.
    @Test func badCertificatesStopTheServerAtStartWithOneLine() async throws {
        try await Self.withCertificates { directory in
            let path = { (name: String) in directory.appendingPathComponent(name).path }
            try "not a certificate".write(toFile: path("junk.pem"), atomically: true, encoding: .utf8)
            let cases: [([String: String], String)] = [
                (["ORCH_TLS_CERT": path("missing.pem"), "ORCH_TLS_KEY": path("ec.key")], "ORCH_TLS_CERT"),
                (["ORCH_TLS_CERT": path("junk.pem"), "ORCH_TLS_KEY": path("ec.key")], "ORCH_TLS_CERT"),
                (["ORCH_TLS_CERT": path("ec.pem"), "ORCH_TLS_KEY": path("missing.key")], "ORCH_TLS_KEY"),
                (["ORCH_TLS_CERT": path("ec.pem"), "ORCH_TLS_KEY": path("rsa.key")], "not the private key"),
                (["ORCH_TLS_CERT": path("ec.pem")], "go together"),
            ]
            for (environment, expected) in cases {
                let run = try await ScriptRunner.run(
                    [ServerProcess.executable.path, "serve", "--port", "0"],
                    environment: environment.merging(["ORCH_DATABASE_URL": "sqlite::memory:"]) { $1 })
                #expect(run.status == 64, "\(environment): \(run.errors)")
                let lines = run.errors.split(separator: "\n")
                #expect(lines.count == 1 && lines.first?.contains(expected) == true, "\(run.errors)")
                #expect(!run.output.contains("listening"))
            }
        }
    }
}
