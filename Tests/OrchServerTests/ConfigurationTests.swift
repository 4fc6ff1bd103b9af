import Foundation
import OrchStore
import Testing

@testable import OrchServer

@Suite struct ConfigurationTests {
    @Test func defaultsMatchTheDesign() throws {
        let configuration = try ServerConfiguration.load(flags: [:], environment: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8000)
        #expect(configuration.databaseURL == .sqliteFile(path: "orch.sqlite"))
        #expect(configuration.jwtSecret == nil)
        #expect(configuration.tokenTTL == 3600)
        #expect(configuration.adminUsername == "admin")
        #expect(configuration.webhookTolerance == 300)
        #expect(configuration.rateLimits == ["admin": 1000, "operator": 500, "viewer": 200, "system": 2000, "anonymous": 100])
        #expect(configuration.sseHeartbeat == 15)
        #expect(configuration.logLevel == .info)
    }

    @Test func flagWinsOverEnvironmentWhichWinsOverDefault() throws {
        let configuration = try ServerConfiguration.load(
            flags: ["ORCH_PORT": "9001"],
            environment: ["ORCH_PORT": "9000", "ORCH_HOST": "0.0.0.0", "ORCH_RATE_LIMITS": "viewer=5, admin=0",
                          "ORCH_WEBHOOK_SECRETS": "new, old", "ORCH_DATABASE_URL": "sqlite::memory:"])
        #expect(configuration.port == 9001)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.rateLimits["viewer"] == 5 && configuration.rateLimits["admin"] == 0)
        #expect(configuration.rateLimits["operator"] == 500)
        #expect(configuration.webhookSecrets == ["new", "old"])
        #expect(configuration.databaseURL == .sqliteMemory)
    }

    @Test(arguments: [
        ("ORCH_PORT", "eighty"), ("ORCH_PORT", "70000"), ("ORCH_DATABASE_URL", "mysql://x"), ("ORCH_JWT_SECRET", "short"),
        ("ORCH_RATE_LIMITS", "root=5"), ("ORCH_RATE_LIMITS", "viewer=-1"), ("ORCH_LOG_LEVEL", "loud"), ("ORCH_TOKEN_TTL", "0"),
        ("ORCH_BCRYPT_COST", "4"),
    ])
    func invalidValuesAreRefusedNamingTheVariable(variable: String, value: String) {
        #expect {
            _ = try ServerConfiguration.load(flags: [:], environment: [variable: value])
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix(variable) == true
        }
    }

    @Test func printableConfigurationMasksSecrets() throws {
        let configuration = try ServerConfiguration.load(
            flags: [:],
            environment: ["ORCH_JWT_SECRET": String(repeating: "s", count: 40), "ORCH_ADMIN_PASSWORD": "hunter2-hunter2",
                          "ORCH_WEBHOOK_SECRETS": "whsec1,whsec2", "ORCH_DATABASE_URL": "postgres://orch:pgpass@db:5432/orch"])
        let text = configuration.printable()
        for secret in ["sssss", "hunter2", "whsec", "pgpass"] { #expect(!text.contains(secret)) }
        #expect(text.contains("ORCH_JWT_SECRET=***"))
        #expect(text.contains("ORCH_DATABASE_URL=postgres://orch:***@db:5432/orch"))
        #expect(ServerConfiguration.settings.allSatisfy { text.contains("\($0.variable)=") })
    }
}
