import OrchStore
import Testing

@Suite struct PostgresURLTests {
    @Test func partsArePercentDecodedWithPostgresDefaults() throws {
        let url = try PostgresURL(parsing: "postgresql://orch:p%40ss%3Aw%2Frd@db.internal:6543/queue?sslmode=require")
        #expect(url == PostgresURL(user: "orch", password: "p@ss:w/rd", host: "db.internal", port: 6543, database: "queue", tlsMode: .require))
        let plain = try PostgresURL(parsing: "postgres://alice@localhost")
        #expect(plain.port == 5432 && plain.database == "alice" && plain.password == nil && plain.tlsMode == .prefer)
        let v6 = try PostgresURL(parsing: "postgres://u:p@[::1]:5433/d?sslmode=verify-full")
        #expect(v6.host == "::1" && v6.port == 5433 && v6.tlsMode == .verifyFull)
        #expect(try PostgresURL(parsing: "postgres://u:p@h/d?sslmode=disable").tlsMode == .disable)
    }

    @Test func theDescriptionNeverShowsThePassword() throws {
        let url = try PostgresURL(parsing: "postgres://orch:s3cr%21t@db:5432/orch")
        #expect(url.description == "postgres://orch:***@db:5432/orch")
        #expect(!DatabaseURL("postgres://orch:s3cr%21t@db:5432/orch")!.description.contains("s3cr"))
        #expect(try PostgresURL(parsing: "postgres://u:p@[::1]/d?sslmode=require").description == "postgres://u:***@[::1]:5432/d?sslmode=require")
    }

    @Test(arguments: [
        "postgres://db:5432/orch", "postgres://:pw@db/orch", "postgres://u:pw@:5432/orch", "postgres://u:pw@db:99999/orch",
        "postgres://u:pw@db:port/orch", "postgres://u:pw@db/orch?sslmode=always", "postgres://u:pw@db/orch?timeout=3",
        "postgres://u:%zz@db/orch", "mysql://u:pw@db/orch",
    ])
    func badURLsAreRefusedWithoutThePassword(text: String) {
        #expect {
            _ = try PostgresURL(parsing: text)
        } throws: { error in
            !"\(error)".contains("pw") && !"\(error)".isEmpty
        }
    }
}
