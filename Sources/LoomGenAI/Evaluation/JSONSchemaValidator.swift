import Foundation

/// The first place where a JSON instance violates a schema.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSONPath-like location: `$`, `$.items[2].price`, `$["odd key"]`.
    public var path: String
    /// What is wrong, e.g. `expected number`.
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `"<path>: <message>"`, e.g. `$.items[2].price: expected number`.
    public var description: String { "\(path): \(message)" }
}

/// Validates JSON against a practical subset of JSON Schema (draft 4 – 2020-12).
///
/// Supported: boolean schemas; `type` (string or list; `integer` = a number
/// with no fractional part); `enum`; `const`; `minimum`/`maximum`;
/// `exclusiveMinimum`/`exclusiveMaximum` (number form, or draft-4 boolean form
/// modifying `minimum`/`maximum`); `minLength`/`maxLength` (in Unicode code
/// points); `pattern` (ICU regex, unanchored search); `minItems`/`maxItems`;
/// `items` (one schema, or a list applied by position); `required`;
/// `properties`; `additionalProperties` (bool or schema; every key not in
/// `properties` is additional); `allOf`/`anyOf`/`oneOf`. Other keywords
/// (`$ref`, `format`, `patternProperties`, `not`, ...) are ignored.
///
/// Checks run in this order, returning the first failure: type, const, enum,
/// number, string, array (bounds, then items in index order), object
/// (required in listed order, properties in sorted key order, then additional
/// properties in sorted key order), allOf, anyOf, oneOf.
public enum JSONSchemaValidator: Sendable {
    /// The first violation of `schema` by `instance`, or `nil` when valid.
    public static func firstViolation(of instance: StrictJSON, against schema: StrictJSON) -> SchemaViolation? {
        var walker = SchemaWalker()
        return walker.firstViolation(of: instance, against: schema, at: "$")
    }
}

/// One validation run; caches compiled `pattern` regexes.
struct SchemaWalker {
    private var regexCache: [String: NSRegularExpression?] = [:]

    mutating func firstViolation(of instance: StrictJSON, against schema: StrictJSON, at path: String) -> SchemaViolation? {
        switch schema {
        case .bool(true): return nil
        case .bool(false): return SchemaViolation(path: path, message: "not allowed (schema is false)")
        case .object(let keywords):
            if let message = Self.typeMessage(instance, keywords)
                ?? Self.constMessage(instance, keywords)
                ?? Self.numberMessage(instance, keywords)
                ?? stringMessage(instance, keywords) {
                return SchemaViolation(path: path, message: message)
            }
            return arrayViolation(instance, keywords, path)
                ?? objectViolation(instance, keywords, path)
                ?? combinatorViolation(instance, keywords, path)
        default:
            return nil
        }
    }

    // MARK: type, const, enum

    static func matches(type name: String, _ value: StrictJSON) -> Bool {
        switch (name, value) {
        case ("integer", .number(let number)): number.isFinite && number.rounded() == number
        default: name == value.typeName
        }
    }

    private static func typeMessage(_ instance: StrictJSON, _ keywords: [String: StrictJSON]) -> String? {
        let names: [String]
        switch keywords["type"] {
        case .string(let name): names = [name]
        case .array(let items): names = items.compactMap(\.stringValue)
        default: return nil
        }
        guard !names.isEmpty, !names.contains(where: { matches(type: $0, instance) }) else { return nil }
        return "expected " + names.joined(separator: " or ")
    }

    private static func constMessage(_ instance: StrictJSON, _ keywords: [String: StrictJSON]) -> String? {
        if let constant = keywords["const"], constant != instance {
            return "must equal \(constant.compactText)"
        }
        if case .array(let options) = keywords["enum"], !options.contains(instance) {
            return "must be one of \(StrictJSON.array(options).compactText)"
        }
        return nil
    }

    // MARK: numbers and strings

    private static func numberMessage(_ instance: StrictJSON, _ keywords: [String: StrictJSON]) -> String? {
        guard case .number(let value) = instance else { return nil }
        let shown = NumberFormatting.format(value)
        if let minimum = keywords["minimum"]?.numberValue {
            if keywords["exclusiveMinimum"] == .bool(true) {
                if !(value > minimum) { return "must be > \(NumberFormatting.format(minimum)), got \(shown)" }
            } else if value < minimum {
                return "must be >= \(NumberFormatting.format(minimum)), got \(shown)"
            }
        }
        if let maximum = keywords["maximum"]?.numberValue {
            if keywords["exclusiveMaximum"] == .bool(true) {
                if !(value < maximum) { return "must be < \(NumberFormatting.format(maximum)), got \(shown)" }
            } else if value > maximum {
                return "must be <= \(NumberFormatting.format(maximum)), got \(shown)"
            }
        }
        if let bound = keywords["exclusiveMinimum"]?.numberValue, !(value > bound) {
            return "must be > \(NumberFormatting.format(bound)), got \(shown)"
        }
        if let bound = keywords["exclusiveMaximum"]?.numberValue, !(value < bound) {
            return "must be < \(NumberFormatting.format(bound)), got \(shown)"
        }
        return nil
    }

    private mutating func stringMessage(_ instance: StrictJSON, _ keywords: [String: StrictJSON]) -> String? {
        guard case .string(let text) = instance else { return nil }
        let length = Double(text.unicodeScalars.count)
        let shown = NumberFormatting.format(length)
        if let minimum = keywords["minLength"]?.numberValue, length < minimum {
            return "must have at least \(NumberFormatting.format(minimum)) characters, got \(shown)"
        }
        if let maximum = keywords["maxLength"]?.numberValue, length > maximum {
            return "must have at most \(NumberFormatting.format(maximum)) characters, got \(shown)"
        }
        if let pattern = keywords["pattern"]?.stringValue {
            guard let regex = regex(pattern) else { return "schema pattern '\(pattern)' is not a valid regular expression" }
            if !RegexSupport.hasMatch(regex, in: text) { return "does not match pattern '\(pattern)'" }
        }
        return nil
    }

    private mutating func regex(_ pattern: String) -> NSRegularExpression? {
        if let cached = regexCache[pattern] { return cached }
        let compiled = try? RegexSupport.compile(pattern).get()
        regexCache[pattern] = compiled
        return compiled
    }

    // MARK: arrays and objects

    private mutating func arrayViolation(_ instance: StrictJSON, _ keywords: [String: StrictJSON], _ path: String) -> SchemaViolation? {
        guard case .array(let items) = instance else { return nil }
        let count = Double(items.count)
        if let minimum = keywords["minItems"]?.numberValue, count < minimum {
            return SchemaViolation(path: path, message: "must have at least \(NumberFormatting.format(minimum)) items, got \(items.count)")
        }
        if let maximum = keywords["maxItems"]?.numberValue, count > maximum {
            return SchemaViolation(path: path, message: "must have at most \(NumberFormatting.format(maximum)) items, got \(items.count)")
        }
        for (index, item) in items.enumerated() {
            let itemSchema: StrictJSON?
            switch keywords["items"] {
            case .array(let positional): itemSchema = index < positional.count ? positional[index] : nil
            case let other: itemSchema = other
            }
            if let itemSchema, let violation = firstViolation(of: item, against: itemSchema, at: "\(path)[\(index)]") {
                return violation
            }
        }
        return nil
    }

    private mutating func objectViolation(_ instance: StrictJSON, _ keywords: [String: StrictJSON], _ path: String) -> SchemaViolation? {
        guard case .object(let members) = instance else { return nil }
        if case .array(let required) = keywords["required"] {
            for name in required.compactMap(\.stringValue) where members[name] == nil {
                return SchemaViolation(path: Self.memberPath(path, name), message: "required property missing")
            }
        }
        let properties = keywords["properties"]?.objectValue ?? [:]
        for name in members.keys.sorted() {
            guard let value = members[name] else { continue }
            let memberPath = Self.memberPath(path, name)
            if let propertySchema = properties[name] {
                if let violation = firstViolation(of: value, against: propertySchema, at: memberPath) { return violation }
            } else if let additional = keywords["additionalProperties"] {
                if additional == .bool(false) {
                    return SchemaViolation(path: memberPath, message: "additional property not allowed")
                }
                if let violation = firstViolation(of: value, against: additional, at: memberPath) { return violation }
            }
        }
        return nil
    }

    /// `$.name` for identifier-like keys, otherwise `$["odd key"]`.
    static func memberPath(_ path: String, _ name: String) -> String {
        let isIdentifier = name.first.map { $0.isASCII && ($0.isLetter || $0 == "_") } ?? false
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        if isIdentifier { return "\(path).\(name)" }
        return "\(path)[\(StrictJSON.string(name).compactText)]"
    }

    // MARK: combinators

    private mutating func combinatorViolation(_ instance: StrictJSON, _ keywords: [String: StrictJSON], _ path: String) -> SchemaViolation? {
        if case .array(let schemas) = keywords["allOf"] {
            for schema in schemas {
                if let violation = firstViolation(of: instance, against: schema, at: path) { return violation }
            }
        }
        if case .array(let schemas) = keywords["anyOf"], !schemas.isEmpty {
            let matched = schemas.contains { firstViolation(of: instance, against: $0, at: path) == nil }
            if !matched { return SchemaViolation(path: path, message: "does not match any schema in anyOf") }
        }
        if case .array(let schemas) = keywords["oneOf"], !schemas.isEmpty {
            let count = schemas.filter { firstViolation(of: instance, against: $0, at: path) == nil }.count
            if count == 0 { return SchemaViolation(path: path, message: "does not match any schema in oneOf") }
            if count > 1 { return SchemaViolation(path: path, message: "matches \(count) schemas in oneOf, expected exactly 1") }
        }
        return nil
    }
}
