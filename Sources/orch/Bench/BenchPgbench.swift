import Foundation
import OrchStore

/// What PostgreSQL itself does on this machine, measured by `pgbench` in the same run as the
/// server's figures: one INSERT per transaction at 32 clients, and a `SKIP LOCKED` queue's
/// dequeue and complete (one transaction each) at 8 clients. Skipped, saying so, when pgbench is
/// not installed.
struct PgbenchBaseline {
    let seconds: Int

    func measure(on server: PostgresURL, report: BenchReport) async throws {
        guard let pgbench = Self.find("pgbench"), let psql = Self.find("psql") else {
            print("pgbench: skipped (not installed; Debian's postgresql-client has it)")
            return
        }
        let name = "orch_pgbench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let database = try await PostgresAdmin.createDatabase(name, on: server)
        do {
            try measure(pgbench: pgbench, psql: psql, database: database, report: report)
        } catch {
            try? await PostgresAdmin.dropDatabase(name, on: server)
            throw error
        }
        try await PostgresAdmin.dropDatabase(name, on: server)
    }

    private func measure(pgbench: String, psql: String, database: PostgresURL, report: BenchReport) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-pgbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func script(_ name: String, _ text: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let url = database.connectionString
        let setup = try script(
            "setup.sql",
            """
            CREATE TABLE jobs (id bigserial PRIMARY KEY, payload text NOT NULL, status text NOT NULL DEFAULT 'queued',
                created_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE queue (id bigserial PRIMARY KEY, payload text NOT NULL, status text NOT NULL DEFAULT 'queued');
            INSERT INTO queue (payload) SELECT 'job ' || n FROM generate_series(1, \(8 * 600 * seconds + 50_000)) n;
            CREATE INDEX queue_ready ON queue (id) WHERE status = 'queued';
            VACUUM ANALYZE queue;
            """)
        _ = try Self.run(psql, ["-q", "-v", "ON_ERROR_STOP=1", "-f", setup, url])
        let insert = try script("insert.sql", "INSERT INTO jobs (payload) VALUES ('x');\n")
        let dequeue = try script(
            "dequeue.sql",
            """
            BEGIN;
            SELECT id FROM queue WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED \\gset
            UPDATE queue SET status = 'done' WHERE id = :id;
            COMMIT;

            """)
        // A fixed number of transactions per client rather than `-T`: pgbench started from this
        // process kept running long past its `-T` here (its timer never fired).
        for (scenario, clients, perClient, file) in [
            ("pgbench insert", 32, 250 * seconds, insert), ("pgbench dequeue+complete", 8, 600 * seconds, dequeue),
        ] {
            let output = try Self.run(
                pgbench, ["-n", "-c", String(clients), "-j", "2", "-t", String(perClient), "-f", file, url])
            guard let tps = Self.figure(after: "tps = ", in: output) else {
                throw BenchError("pgbench printed no tps: \(output)")
            }
            report.add("\(scenario) (\(clients) clients)", "throughput", tps, "transactions/s")
            if let latency = Self.figure(after: "latency average = ", in: output) {
                report.add("\(scenario) (\(clients) clients)", "latency average", latency, "ms")
            }
        }
    }

    static func find(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/\(program)" } + ["/usr/lib/postgresql/15/bin/\(program)"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw BenchError("\(executable) failed: \(text)") }
        return text
    }

    static func figure(after label: String, in text: String) -> Double? {
        guard let range = text.range(of: label) else { return nil }
        return Double(text[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}
