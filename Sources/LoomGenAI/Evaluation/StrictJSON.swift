import Foundation

/// A JSON value that is `Sendable`, `Equatable` and `Codable`.
///
/// Numbers are stored as `Double` (as in JavaScript), so `1` and `1.0` are the
/// same value — this matches JSON Schema, where numbers compare mathematically.
/// Integers above 2^53 lose precision.
public enum StrictJSON: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([StrictJSON])
    case object([String: StrictJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([StrictJSON].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: StrictJSON].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses `text` as one JSON document with `StrictJSONParser` (RFC 8259:
    /// any value, including a bare scalar, is a valid document; trailing commas,
    /// comments and single quotes are not). Returns `nil` when the text is not
    /// valid JSON.
    public static func parse(_ text: String) -> StrictJSON? {
        StrictJSONParser.parse(text)
    }

    /// Converts a Foundation / YAML-style value (`String`, `Bool`, `Int`, `Double`,
    /// `NSNumber`, `NSNull`, `[Any]`, `[String: Any]`, `StrictJSON`) into a `StrictJSON`.
    /// Returns `nil` for anything else (dates, data, non-string keys, non-finite numbers).
    public init?(any value: Any) {
        switch value {
        case let value as StrictJSON:
            self = value
        case is NSNull:
            self = .null
        case let value as String:
            self = .string(value)
        case let value as [Any]:
            var items: [StrictJSON] = []
            items.reserveCapacity(value.count)
            for item in value {
                guard let converted = StrictJSON(any: item) else { return nil }
                items.append(converted)
            }
            self = .array(items)
        case let value as [String: Any]:
            var members: [String: StrictJSON] = [:]
            for (key, item) in value {
                guard let converted = StrictJSON(any: item) else { return nil }
                members[key] = converted
            }
            self = .object(members)
        default:
            guard let scalar = StrictJSON.scalar(value) else { return nil }
            self = scalar
        }
    }

    /// Booleans must be recognised before numbers: on Linux an `NSNumber`
    /// holding `1` also bridges to `Bool`, so we look at the concrete type.
    private static func scalar(_ value: Any) -> StrictJSON? {
        if type(of: value) == Bool.self, let bool = value as? Bool { return .bool(bool) }
        if let number = value as? NSNumber {
            let isBoolean = String(cString: number.objCType) == "c"
                && String(describing: type(of: number)).contains("Boolean")
            if isBoolean { return .bool(number.boolValue) }
            let double = number.doubleValue
            return double.isFinite ? .number(double) : nil
        }
        return nil
    }

    /// The string payload, if this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The numeric payload, if this is a number.
    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The object payload, if this is an object.
    public var objectValue: [String: StrictJSON]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The JSON Schema type name of this value: `null`, `boolean`, `number`
    /// (also for integral numbers), `string`, `array` or `object`.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
