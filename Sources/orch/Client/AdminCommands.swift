import ArgumentParser
import Foundation
import OrchClient
import OrchModels

struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Acquire, release and list resource locks.", subcommands: [Acquire.self, Release.self, List.self])

    struct Acquire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acquire (or renew) a lock; prints the grant.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The resource.") var resource: String
        @Option(help: "The owner.") var owner: String
        @Option(help: "Seconds the lock lasts (default 60).") var ttl = 60
        @Option(help: "Seconds to wait behind the holder (default 0).") var timeout = 0
        @Option(help: "Place among waiters, 1-10 (default 1).") var priority = 1

        func run() async throws {
            try await runClient {
                try printJSON(
                    try await options.client().acquireLock(
                        AcquireLockRequest(resource: resource, owner: owner, ttl: ttl, priority: priority, timeout: timeout)))
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a lock.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The resource.") var resource: String
        @Option(help: "The owner.") var owner: String
        @Flag(help: "Admins: release whoever holds it.") var force = false

        func run() async throws {
            try await runClient {
                try printJSON(try await options.client().releaseLock(resource: resource, owner: owner, force: force))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List held locks.")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            try await runClient {
                let list = try await options.client().locks()
                if json { return try printJSON(list) }
                printTable(
                    ["RESOURCE", "OWNER", "TTL LEFT", "FENCING", "WAITING"],
                    list.locks.map { lock in
                        [
                            lock.resource, lock.owner, "\(lock.remainingTTL)s", lock.fencingToken.map(String.init) ?? "-",
                            String(list.queueStatus.byResource[lock.resource] ?? 0),
                        ]
                    })
            }
        }
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users (admin).", subcommands: [Create.self, List.self, Update.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user; prints it.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Username.") var username: String
        @Option(help: "Email address.") var email: String
        @Option(help: "viewer, operator, admin or system.") var role: Role
        @Option(help: "Password (default ORCH_NEW_PASSWORD, else asked for).") var password: String?

        func run() async throws {
            try await runClient {
                guard let password = password ?? ProcessInfo.processInfo.environment["ORCH_NEW_PASSWORD"]
                    ?? Login.prompt("Password for \(username): ")
                else { throw ValidationError("no password given") }
                try printJSON(
                    try await options.client().createUser(
                        CreateUserRequest(username: username, email: email, password: password, role: role)))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only this role.") var role: Role?
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            try await runClient {
                let list = try await options.client().users(role: role, limit: 500)
                if json { return try printJSON(list) }
                printTable(
                    ["USER", "USERNAME", "ROLE", "ACTIVE", "EMAIL"],
                    list.users.map { [$0.userID, $0.username, $0.role.rawValue, $0.isActive ? "yes" : "no", $0.email] })
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's email, role, activity or password.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The user id.") var id: String
        @Option(help: "New email.") var email: String?
        @Option(help: "New role.") var role: Role?
        @Option(help: "true or false.") var active: Bool?
        @Option(help: "New password.") var password: String?

        func run() async throws {
            try await runClient {
                try printJSON(
                    try await options.client().updateUser(
                        id: id, UpdateUserRequest(email: email, role: role, isActive: active, password: password)))
            }
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage API tokens for machines.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API token; prints the secret once on standard output.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "A name for the token, e.g. prometheus.") var name: String
        @Option(help: "Its role (default yours).") var role: Role?
        @Option(help: "Seconds until it expires (default never).") var expiresIn: Int?

        func run() async throws {
            try await runClient {
                let created = try await options.client().createAPIToken(
                    CreateAPITokenRequest(name: name, role: role, expiresIn: expiresIn))
                printError("created \(created.apiToken.tokenID) (\(created.apiToken.role.rawValue)); the token is shown only now:")
                print(created.token)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API tokens (without secrets).")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print the server's JSON.") var json = false

        func run() async throws {
            try await runClient {
                let list = try await options.client().apiTokens()
                if json { return try printJSON(list) }
                printTable(
                    ["TOKEN", "NAME", "ROLE", "PREFIX", "EXPIRES", "LAST USED"],
                    list.tokens.map { token in
                        [
                            token.tokenID, token.name, token.role.rawValue, token.prefix,
                            token.expiresAt.map(Timestamp.format) ?? "never", token.lastUsedAt.map(Timestamp.format) ?? "-",
                        ]
                    })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API token at once.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The token id.") var id: String

        func run() async throws {
            try await runClient {
                try await options.client().revokeAPIToken(id: id)
                print("revoked \(id)")
            }
        }
    }
}
