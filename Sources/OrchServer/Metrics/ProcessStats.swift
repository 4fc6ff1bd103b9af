import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resource use of this process, read from `/proc/self` (Linux). Fields that cannot be read
/// on a platform are `nil`.
struct ProcessStats: Sendable {
    var residentBytes: Int?
    var virtualBytes: Int?
    var cpuSeconds: Double?
    var openFileDescriptors: Int?
    var maxFileDescriptors: Int?
    /// Seconds since 1970 when the process started.
    var startTime: Double?

    /// Clock ticks per second, page size and boot time do not change while the process runs.
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    private static let bootTime: Double? = {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }()

    static func read() -> ProcessStats {
        var stats = ProcessStats()
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count >= 2, let pages = Int(fields[0]), let resident = Int(fields[1]) {
                stats.virtualBytes = pages * pageSize
                stats.residentBytes = resident * pageSize
            }
        }
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        {
            // Fields after the command name (which may hold spaces), starting at field 3 (state).
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            if fields.count > 19, let user = Double(fields[11]), let system = Double(fields[12]),
                let started = Double(fields[19])
            {
                stats.cpuSeconds = (user + system) / ticksPerSecond
                if let bootTime { stats.startTime = bootTime + started / ticksPerSecond }
            }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            stats.openFileDescriptors = entries.count
        }
        var limit = rlimit()
        #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        if getrlimit(resource, &limit) == 0, limit.rlim_cur != rlim_t.max {
            stats.maxFileDescriptors = Int(limit.rlim_cur)
        }
        return stats
    }
}
