import Foundation
import OrchModels

/// A schedule's task template as stored: JSON text.
enum ScheduleTemplateColumn {
    static func encode(_ template: ScheduleTaskTemplate) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(template), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> ScheduleTaskTemplate {
        try JSONDecoder().decode(ScheduleTaskTemplate.self, from: Data(text.utf8))
    }

    static let nameTaken = "A schedule with this name already exists"
}
