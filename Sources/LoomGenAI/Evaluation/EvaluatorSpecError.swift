/// A configuration error that names the offending field.
///
/// `field` is a path such as `evaluators[2].pattern` or
/// `schema.properties.name.pattern`; `description` renders as
/// `"<field>: <message>"` (or just the message when the path is empty).
public struct EvaluatorSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? message : "\(field): \(message)"
    }

    /// Returns the same error with `prefix` prepended to the field path
    /// (`"evaluators[2]"` + `"pattern"` → `"evaluators[2].pattern"`).
    public func prefixed(by prefix: String) -> EvaluatorSpecError {
        EvaluatorSpecError(field: FieldPath.join(prefix, field), message: message)
    }
}

/// Helpers for building dotted field paths.
enum FieldPath {
    /// Joins two path fragments with a dot, unless either is empty or the second
    /// starts with an index (`[`).
    static func join(_ prefix: String, _ suffix: String) -> String {
        if prefix.isEmpty { return suffix }
        if suffix.isEmpty { return prefix }
        if suffix.hasPrefix("[") { return prefix + suffix }
        return prefix + "." + suffix
    }

    /// Renders a `Codable` coding path as `evaluators[2].schema`.
    static func render(_ codingPath: [any CodingKey]) -> String {
        var path = ""
        for key in codingPath {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path = join(path, key.stringValue)
            }
        }
        return path
    }
}
