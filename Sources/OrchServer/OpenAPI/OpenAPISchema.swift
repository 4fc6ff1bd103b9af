import OrchModels

/// Small builders for the JSON Schema (OpenAPI 3.0.3 dialect) pieces of ``OpenAPIDocument``.
enum Schema {
    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    static let string: JSONValue = ["type": "string"]
    static let boolean: JSONValue = ["type": "boolean"]
    static let number: JSONValue = ["type": "number"]
    static let dateTime: JSONValue = ["type": "string", "format": "date-time"]
    /// Any JSON value.
    static let any: JSONValue = [:]
    /// Any JSON object.
    static let anyObject: JSONValue = ["type": "object", "additionalProperties": true]

    static func string(length: ClosedRange<Int>, pattern: String? = nil, description: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": "string", "minLength": .int(Int64(length.lowerBound)), "maxLength": .int(Int64(length.upperBound)),
        ]
        if let pattern { schema["pattern"] = .string(pattern) }
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    static func integer(_ range: ClosedRange<Int>? = nil, default value: Int? = nil, description: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "integer"]
        if let range {
            schema["minimum"] = .int(Int64(range.lowerBound))
            schema["maximum"] = .int(Int64(range.upperBound))
        }
        if let value { schema["default"] = .int(Int64(value)) }
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    static func enumeration(_ values: [String], description: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "string", "enum": .array(values.map(JSONValue.string))]
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    static func array(_ items: JSONValue) -> JSONValue { ["type": "array", "items": items] }

    /// `schema` that may also be `null`.
    static func nullable(_ schema: JSONValue) -> JSONValue {
        guard case .object(var object) = schema else { return schema }
        object["nullable"] = true
        // An enumeration admits null only when null is one of its values.
        if case .array(let values) = object["enum"] { object["enum"] = .array(values + [.null]) }
        return .object(object)
    }

    /// An object with `properties`, of which `required` must be present. Responses list every
    /// property they send as required; request bodies tolerate unknown properties.
    static func object(
        _ properties: [String: JSONValue], required: [String], description: String? = nil,
        additionalProperties: JSONValue = true
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": "object", "properties": .object(properties), "additionalProperties": additionalProperties,
        ]
        if !required.isEmpty { schema["required"] = .array(required.sorted().map(JSONValue.string)) }
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    /// A request body: the server reads an optional property given as `null` as if it were
    /// absent (its default), so optional properties are documented as nullable.
    static func request(_ properties: [String: JSONValue], required: [String], description: String? = nil) -> JSONValue {
        var documented = properties
        for (name, schema) in properties where !required.contains(name) { documented[name] = nullable(schema) }
        return object(documented, required: required, description: description)
    }

    /// An object whose every property is required.
    static func record(_ properties: [String: JSONValue], description: String? = nil) -> JSONValue {
        object(properties, required: Array(properties.keys), description: description)
    }
}
