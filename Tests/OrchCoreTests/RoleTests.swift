import OrchModels
import Testing

@Suite struct RoleTests {
    @Test(arguments: [
        (Role.viewer, Role.viewer, true), (.viewer, .operator, false), (.viewer, .admin, false),
        (.operator, .viewer, true), (.operator, .operator, true), (.operator, .admin, false),
        (.admin, .viewer, true), (.admin, .operator, true), (.admin, .admin, true),
        (.system, .viewer, true), (.system, .operator, true), (.system, .admin, false),
        (.system, .system, true), (.admin, .system, false), (.operator, .system, false),
    ])
    func roleSatisfiesOnlyWhatItsRankAllows(role: Role, minimum: Role, expected: Bool) {
        #expect(role.satisfies(minimum) == expected)
    }

    @Test func unknownRoleFailsToDecodeWithTheAllowedValues() throws {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Role].self, from: Data(#"["superuser"]"#.utf8))
        }
        #expect(try JSONDecoder().decode([Role].self, from: Data(#"["system"]"#.utf8)) == [.system])
    }
}

import Foundation
