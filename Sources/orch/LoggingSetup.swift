import Logging

enum LoggingSetup {
    /// Logs go to standard error at `level`, leaving standard output for the lines scripts read.
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
