import Foundation
import Synchronization

/// The figures of one `orch bench` run: printed as they are measured, then as one table, and
/// written as JSON with the machine's core count and the commit (`--json PATH`).
final class BenchReport: Sendable {
    struct Figure: Codable, Sendable {
        var scenario: String
        var figure: String
        var value: Double
        var unit: String
        /// The issue's goal for this figure, as text (`>= 20000`), when it has one.
        var target: String?
    }

    struct Document: Codable {
        var date: String
        var cores: Int
        var commit: String
        var machine: String
        var figures: [Figure]
    }

    private let figures = Mutex<[Figure]>([])

    func add(_ scenario: String, _ figure: String, _ value: Double, _ unit: String, target: String? = nil) {
        figures.withLock { $0.append(Figure(scenario: scenario, figure: figure, value: value, unit: unit, target: target)) }
        print("  \(scenario): \(figure) = \(Self.text(value)) \(unit)")
    }

    /// Adds p50, p99 and p999 of `latencies` (milliseconds).
    func addLatencies(_ scenario: String, _ name: String, _ latencies: [Double], p99Target: String? = nil) {
        let statistics = Statistics(latencies)
        add(scenario, "\(name) p50", statistics.percentile(0.5), "ms")
        add(scenario, "\(name) p99", statistics.percentile(0.99), "ms", target: p99Target)
        add(scenario, "\(name) p999", statistics.percentile(0.999), "ms")
    }

    static func text(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        if abs(value) >= 100 { return String(Int(value.rounded())) }
        return format(value, decimals: 2)
    }

    func printTable() {
        let rows = figures.withLock { $0 }
        let header = ["scenario", "figure", "value", "unit", "target"]
        let cells = rows.map { [$0.scenario, $0.figure, Self.text($0.value), $0.unit, $0.target ?? ""] }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            row.enumerated().map { index, cell in
                index == 2 ? String(repeating: " ", count: widths[index] - cell.count) + cell
                    : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }
        print("")
        print(line(header))
        print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for row in cells { print(line(row)) }
        print("\(ProcessInfo.processInfo.activeProcessorCount) cores, commit \(Self.commit())")
    }

    func writeJSON(to path: String) throws {
        let document = Document(
            date: ISO8601DateFormatter().string(from: Date()), cores: ProcessInfo.processInfo.activeProcessorCount,
            commit: Self.commit(), machine: Self.machine(), figures: figures.withLock { $0 })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(document).write(to: URL(fileURLWithPath: path))
        print("figures written to \(path)")
    }

    /// The commit the measured binary was built from (``BuildCommit``, written at build time),
    /// not whatever the current directory holds now.
    static func commit() -> String {
        BuildCommit.commit
    }

    /// The processor model and memory, from /proc.
    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) }
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
        return "\(cpu ?? "unknown CPU"), \(ProcessInfo.processInfo.activeProcessorCount) cores, \((memory ?? 0) / 1_048_576) GiB"
    }
}

