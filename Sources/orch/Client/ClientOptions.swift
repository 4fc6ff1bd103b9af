import ArgumentParser
import AsyncHTTPClient
import Foundation
import OrchClient
import OrchModels
import Synchronization

/// Where the command line keeps its login: `$XDG_CONFIG_HOME/orch/credentials.json`, else
/// `~/.config/orch/credentials.json`, readable by the user only (mode 0600).
struct Credentials: Codable {
    var url: String
    var token: String

    static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        let base =
            environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config")
        return base.appendingPathComponent("orch/credentials.json")
    }

    static func load() -> Credentials? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode(Credentials.self, from: data)
    }

    func save() throws {
        let file = Self.file
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let data = try JSONEncoder().encode(self)
        // Created with 0600 from the start, so the token is never readable by others.
        FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
    }
}

/// The server and token every client command uses: `--url` / `--token`, else `ORCH_URL` /
/// `ORCH_TOKEN`, else what `orch login` stored.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL (ORCH_URL; default: the one `orch login` stored, else http://127.0.0.1:8000).")
    var url: String?

    @Option(help: "Bearer token, a login or API token (ORCH_TOKEN; default: the one `orch login` stored).")
    var token: String?

    @Option(help: "Seconds a request may take, connecting included (default 30).")
    var requestTimeout: Int = 30

    @Option(name: .customLong("cacert"), help: "PEM file of the CA to trust for an https:// server with a private CA (ORCH_CA_CERT).")
    var caCertificate: String?

    func client(timeout: Duration? = nil) throws -> OrchClient {
        let timeout = timeout ?? .seconds(requestTimeout)
        let environment = ProcessInfo.processInfo.environment.filter { !$0.value.isEmpty }
        let stored = Credentials.load()
        let url = url ?? environment["ORCH_URL"] ?? stored?.url ?? "http://127.0.0.1:8000"
        let token = token ?? environment["ORCH_TOKEN"] ?? (stored?.url == url ? stored?.token : nil)
        return OrchClient(
            baseURL: url, token: token, timeout: timeout,
            httpClient: try TrustedCA.httpClient(caCertificate ?? environment["ORCH_CA_CERT"]))
    }
}

/// The HTTP client of this process: the shared one, or one trusting `--cacert`'s CA (made once
/// and kept for the process's life, as the shared one is).
enum TrustedCA {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func httpClient(_ path: String?) throws -> HTTPClient {
        guard let path else { return .shared }
        return try clients.withLock { clients in
            if let client = clients[path] { return client }
            do {
                let client = try OrchClient.httpClient(trustingCertificatesIn: path)
                clients[path] = client
                return client
            } catch {
                throw ValidationError("--cacert / ORCH_CA_CERT: cannot read a PEM certificate from \(path)")
            }
        }
    }
}

/// Exit codes of the client commands (documented in the README).
enum ClientExit {
    /// `dispatch --wait`: the task failed or was cancelled.
    static let taskUnsuccessful: Int32 = 1
    /// The server refused the request (4xx other than 401/403).
    static let refused: Int32 = 65
    /// The server failed (5xx) or answered something unreadable.
    static let serverError: Int32 = 70
    /// The server could not be reached.
    static let unreachable: Int32 = 69
    /// Not signed in, or the token was refused (401, 403).
    static let notPermitted: Int32 = 77
}

/// Runs a client command's body; an error prints the server's message and request id (no
/// stack trace) and exits with the matching ``ClientExit`` code.
func runClient(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as OrchClientError {
        printError("error: \(error.message) [\(error.code), HTTP \(error.status)]"
            + (error.requestID.map { " request \($0)" } ?? ""))
        throw ExitCode(
            error.status == 401 || error.status == 403
                ? ClientExit.notPermitted : error.status >= 500 ? ClientExit.serverError : ClientExit.refused)
    } catch let error as HTTPClientError {
        printError("error: cannot reach the server: \(error)")
        throw ExitCode(ClientExit.unreachable)
    } catch let error as DecodingError {
        printError("error: unexpected answer from the server: \(error)")
        throw ExitCode(ClientExit.serverError)
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode(ClientExit.unreachable)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints `value` as indented JSON (dates as the API writes them).
func printJSON(_ value: some Encodable) throws {
    let encoder = Timestamp.makeEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints rows as aligned columns under `headers`.
func printTable(_ headers: [String], _ rows: [[String]]) {
    var widths = headers.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(headers))
    for row in rows { print(line(row)) }
}

/// Reads a JSON object given on the command line.
func parseObject(_ text: String, option: String) throws -> [String: JSONValue] {
    guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8)) else {
        throw ValidationError("\(option) must be a JSON object")
    }
    return object
}

/// One readable line for an event: time, type, task, and its data.
func describe(_ event: TaskEvent) -> String {
    let data = (try? String(decoding: JSONEncoder.sorted.encode(event.data), as: UTF8.self)) ?? "{}"
    return "\(Timestamp.format(event.timestamp))  \(event.eventType.padding(toLength: 18, withPad: " ", startingAt: 0)) "
        + "\(event.taskID ?? "-")  \(data)"
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
