import OrchCore
import Testing

@Suite struct UserRulesTests {
    @Test(arguments: ["abc", "new_user", "a.b-c_9", String(repeating: "x", count: 64)])
    func acceptsValidUsernames(name: String) throws {
        try UserRules.validateUsername(name)
    }

    @Test(arguments: ["ab", "", String(repeating: "x", count: 65), "has space", "ünï", "semi;colon", "a/b"])
    func refusesInvalidUsernames(name: String) {
        #expect(throws: OrchError.self) { try UserRules.validateUsername(name) }
        do {
            try UserRules.validateUsername(name)
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.details["field"] == "username")
        }
    }

    @Test(arguments: ["user@example.com", "first.last+tag@sub.example.org", "a@b.co"])
    func acceptsPlausibleEmails(email: String) throws {
        try UserRules.validateEmail(email)
    }

    @Test(arguments: ["", "plain", "@example.com", "a@", "a@b", "a b@example.com", "a@@example.com", "a@-x.com", "a@x..com"])
    func refusesImplausibleEmails(email: String) {
        #expect(throws: OrchError.self) { try UserRules.validateEmail(email) }
    }

    @Test func passwordMustBeEightToSeventyTwoCharacters() throws {
        try UserRules.validatePassword("12345678")
        try UserRules.validatePassword(String(repeating: "p", count: 72))
        #expect(throws: OrchError.self) { try UserRules.validatePassword("1234567") }
        #expect(throws: OrchError.self) { try UserRules.validatePassword(String(repeating: "p", count: 73)) }
        // Characters are code points, whatever their bytes: 72 three-byte characters (216
        // bytes) and 72 four-byte ones are allowed, 73 are not, and 7 are too few.
        try UserRules.validatePassword(String(repeating: "€", count: 72))
        try UserRules.validatePassword(String(repeating: "🔑", count: 72))
        #expect(throws: OrchError.self) { try UserRules.validatePassword(String(repeating: "€", count: 73)) }
        #expect(throws: OrchError.self) { try UserRules.validatePassword(String(repeating: "€", count: 7)) }
    }
}
