import Foundation
import Logging
import OrchModels
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

enum LoggingSetup {
    /// Logs go to standard error at `level`, leaving standard output for the lines scripts read.
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            BufferedLogHandler(label: label, sink: .standardError, logLevel: level)
        }
    }
}

/// Log lines gathered in memory and written to a file descriptor in batches.
///
/// swift-log's `StreamLogHandler` takes a lock and flushes the stream for every line: with the
/// per-request `info` line on (the default), that cost a quarter of the dispatch throughput.
/// Here a line is appended to a buffer under a lock; a background thread writes the buffer out
/// every 50 ms, and a line at `warning` or above, or a buffer past 64 KiB, is written at once.
/// At most the last 50 ms of `info` lines can be lost to a `kill -9`; ``flush()`` runs at exit.
final class LogSink: Sendable {
    static let standardError = LogSink(descriptor: 2)

    private let descriptor: Int32
    private let buffer = Mutex<[UInt8]>([])
    static let interval: TimeInterval = 0.05
    static let threshold = 64 << 10

    init(descriptor: Int32) {
        self.descriptor = descriptor
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: Self.interval)
                flush()
            }
        }
        thread.name = "orch-log-writer"
        thread.start()
        atexit { LogSink.standardError.flush() }
    }

    func write(_ line: String, urgent: Bool) {
        let full = buffer.withLock { buffer in
            buffer.append(contentsOf: line.utf8)
            return buffer.count >= Self.threshold
        }
        if urgent || full { flush() }
    }

    /// Writes out what is buffered.
    func flush() {
        let bytes = buffer.withLock { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

/// One line per message: `<time> <level> <label>: <metadata> <message>` (metadata as
/// `key=value`, sorted by key).
struct BufferedLogHandler: LogHandler {
    let label: String
    let sink: LogSink
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider? = nil

    init(label: String, sink: LogSink, logLevel: Logger.Level) {
        self.label = label
        self.sink = sink
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        var text = Timestamp.format(Date()) + " " + level.rawValue + " " + label + ":"
        for key in all.keys.sorted() { text += " \(key)=\(all[key]!)" }
        text += " \(message)\n"
        sink.write(text, urgent: level >= .warning)
    }
}
