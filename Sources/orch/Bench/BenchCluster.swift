import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `orch bench cluster`: several nodes on one PostgreSQL database. For each number of nodes
/// (`--nodes 1,2,3`), starts that many `orch serve` on one fresh database and measures
/// dispatch (`--connections` spread over the nodes) and end-to-end throughput (workers and the
/// producer spread round-robin), and the CPU each task cost the nodes and PostgreSQL (from
/// /proc, so PostgreSQL must run on this machine for its share to count).
///
/// On one machine more nodes cannot add cores: what this shows is what coordination costs
/// (the ratio of N nodes' throughput to one node's).
struct BenchCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Dispatch and end-to-end throughput, and CPU per task, with 1, 2 and 3 nodes on one PostgreSQL database.")

    @OptionGroup var target: BenchTarget
    @Option(help: "Comma-separated numbers of nodes.") var nodes = "1,2,3"
    @Option(help: "Concurrent dispatch connections (spread over the nodes).") var connections = 64
    @Option(help: "Seconds per measured step.") var duration = 8

    var levels: [Int] { nodes.split(separator: ",").compactMap { Int($0) }.filter { (1...16).contains($0) } }

    func validate() throws {
        guard !levels.isEmpty else { throw ValidationError("--nodes: e.g. 1,2,3") }
        guard target.url != nil || target.databaseURL != nil else {
            throw ValidationError("--database-url postgres://… (the nodes' PostgreSQL server), or --url with the nodes' URLs")
        }
    }

    func run() async throws {
        let report = BenchReport()
        let endToEnd = try BenchEndToEnd.parse(["--duration", String(duration)])
        var throughputs: [Int: (dispatch: Double, endToEnd: Double)] = [:]
        let counts = target.url.map { [$0.split(separator: ",").count] } ?? levels
        for count in counts {
            try await target.withContext(
                connections: max(connections, endToEnd.connectionsNeeded), nodes: count, report: report, finish: false
            ) { bench in
                let scenario = "cluster, \(count) node\(count == 1 ? "" : "s")"
                let wrk = WrkRunner.find()
                var cpu = (nodes: bench.server.cpuSeconds(), postgres: ProcessCPU.seconds(named: "postgres"))
                let dispatch = try await BenchDispatch.figures(connections: connections, seconds: duration, wrk: wrk, bench)
                let dispatched = dispatch.requestsPerSecond * Double(duration)
                report.add(scenario, "dispatch, \(connections) connections", dispatch.requestsPerSecond, "requests/s")
                report.add(scenario, "dispatch latency p99", dispatch.p99, "ms")
                report.add(scenario, "dispatch CPU per task, nodes", (bench.server.cpuSeconds() - cpu.nodes) / dispatched * 1e6, "µs")
                report.add(
                    scenario, "dispatch CPU per task, PostgreSQL",
                    (ProcessCPU.seconds(named: "postgres") - cpu.postgres) / dispatched * 1e6, "µs")

                cpu = (bench.server.cpuSeconds(), ProcessCPU.seconds(named: "postgres"))
                let (completed, seconds, delays) = try await endToEnd.run(bench)
                report.add(scenario, "end to end", Double(completed) / seconds, "tasks/s")
                report.addLatencies(scenario, "dispatch to start", delays)
                report.add(
                    scenario, "end-to-end CPU per task, nodes", (bench.server.cpuSeconds() - cpu.nodes) / Double(completed) * 1e6,
                    "µs")
                report.add(
                    scenario, "end-to-end CPU per task, PostgreSQL",
                    (ProcessCPU.seconds(named: "postgres") - cpu.postgres) / Double(completed) * 1e6, "µs")
                throughputs[count] = (dispatch.requestsPerSecond, Double(completed) / seconds)
            }
        }
        if let one = throughputs[1] {
            for (count, figures) in throughputs.sorted(by: { $0.key < $1.key }) where count > 1 {
                report.add(
                    "cluster, \(count) nodes", "dispatch vs 1 node", figures.dispatch / one.dispatch * 100, "%", target: ">= 80")
                report.add(
                    "cluster, \(count) nodes", "end to end vs 1 node", figures.endToEnd / one.endToEnd * 100, "%",
                    target: ">= 80")
            }
        }
        report.printTable()
        if let json = target.json { try report.writeJSON(to: json) }
    }
}
