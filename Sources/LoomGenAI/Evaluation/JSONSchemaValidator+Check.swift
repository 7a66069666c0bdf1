extension JSONSchemaValidator {
    private static let typeNames: Set<String> = ["null", "boolean", "object", "array", "number", "integer", "string"]
    private static let numberKeywords = ["minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"]
    private static let combinators = ["allOf", "anyOf", "oneOf"]

    /// Checks that `schema` is well formed for the supported keywords: a
    /// boolean or object; `type` names are known; `required` is a list of
    /// strings; bounds are numbers; `pattern` compiles; sub-schemas (under
    /// `properties`, `additionalProperties`, `items`, `allOf`/`anyOf`/`oneOf`)
    /// are checked recursively. Errors name the path, e.g.
    /// `schema.properties.name.pattern`.
    static func checkSchema(_ schema: StrictJSON, path: String) throws(EvaluatorSpecError) {
        guard case .object(let keywords) = schema else {
            if case .bool = schema { return }
            throw EvaluatorSpecError(field: path, message: "expected a schema object or boolean, got \(schema.typeName)")
        }
        try checkType(keywords["type"], path: FieldPath.join(path, "type"))
        for key in numberKeywords {
            if let value = keywords[key], value.numberValue == nil {
                throw EvaluatorSpecError(field: FieldPath.join(path, key), message: "expected a number, got \(value.typeName)")
            }
        }
        if let value = keywords["pattern"] {
            guard case .string(let pattern) = value else {
                throw EvaluatorSpecError(field: FieldPath.join(path, "pattern"), message: "expected a string, got \(value.typeName)")
            }
            if case .failure(let error) = RegexSupport.compile(pattern) {
                throw EvaluatorSpecError(field: FieldPath.join(path, "pattern"), message: error.message)
            }
        }
        if let value = keywords["required"] {
            guard case .array(let names) = value, names.allSatisfy({ $0.stringValue != nil }) else {
                throw EvaluatorSpecError(field: FieldPath.join(path, "required"), message: "expected a list of strings")
            }
        }
        if let value = keywords["enum"] {
            guard case .array = value else {
                throw EvaluatorSpecError(field: FieldPath.join(path, "enum"), message: "expected a list, got \(value.typeName)")
            }
        }
        try checkSubschemas(keywords, path: path)
    }

    private static func checkType(_ value: StrictJSON?, path: String) throws(EvaluatorSpecError) {
        let names: [StrictJSON]
        switch value {
        case .none: return
        case .string(let name)?: names = [.string(name)]
        case .array(let items)?: names = items
        case .some(let other): throw EvaluatorSpecError(field: path, message: "expected a type name or list, got \(other.typeName)")
        }
        for name in names {
            guard let string = name.stringValue, typeNames.contains(string) else {
                throw EvaluatorSpecError(field: path, message: "unknown type \(name.compactText)")
            }
        }
    }

    private static func checkSubschemas(_ keywords: [String: StrictJSON], path: String) throws(EvaluatorSpecError) {
        if let value = keywords["properties"] {
            guard case .object(let properties) = value else {
                throw EvaluatorSpecError(field: FieldPath.join(path, "properties"), message: "expected an object")
            }
            for name in properties.keys.sorted() {
                try checkSchema(properties[name] ?? .bool(true), path: FieldPath.join(FieldPath.join(path, "properties"), name))
            }
        }
        if let additional = keywords["additionalProperties"] {
            try checkSchema(additional, path: FieldPath.join(path, "additionalProperties"))
        }
        switch keywords["items"] {
        case .array(let schemas)?:
            for (index, schema) in schemas.enumerated() {
                try checkSchema(schema, path: FieldPath.join(path, "items[\(index)]"))
            }
        case .some(let schema):
            try checkSchema(schema, path: FieldPath.join(path, "items"))
        case .none:
            break
        }
        for key in combinators {
            guard let value = keywords[key] else { continue }
            guard case .array(let schemas) = value, !schemas.isEmpty else {
                throw EvaluatorSpecError(field: FieldPath.join(path, key), message: "expected a non-empty list of schemas")
            }
            for (index, schema) in schemas.enumerated() {
                try checkSchema(schema, path: FieldPath.join(path, "\(key)[\(index)]"))
            }
        }
    }
}
