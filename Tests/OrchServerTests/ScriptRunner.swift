import Foundation

/// Runs a program (Python, Node) to completion without blocking the test's threads, killing it
/// after `timeout`.
enum ScriptRunner {
    struct Result: Sendable {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs `arguments` with `environment` added; `input` (if any) is written to its
    /// standard input, which is then closed.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let stdin = input.map { _ in Pipe() }
        process.standardInput = stdin ?? FileHandle.nullDevice
        let printed = Printed()
        let complained = Printed()
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        try process.run()
        if let stdin, let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        for (pipe, sink) in [(output, printed), (errors, complained)] {
            Thread.detachNewThread {
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { return }
                    sink.append(String(decoding: chunk, as: UTF8.self))
                }
            }
        }
        let killer = Task {
            try await Task.sleep(for: timeout)
            kill(process.processIdentifier, SIGKILL)
        }
        var status: Int32 = -1
        for await code in exited.stream {
            status = code
            break
        }
        killer.cancel()
        // Let the readers drain what was written just before exit.
        try await Task.sleep(for: .milliseconds(100))
        return Result(status: status, output: printed.text, errors: complained.text)
    }
}
