/// A decoded JSON value, just detailed enough for JSONL metadata.
enum JSONLValue: Decodable, Equatable {
    case string(String)
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case array
    case object([String: JSONLValue])
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if (try? container.decode([JSONLValue].self)) != nil {
            self = .array
        } else {
            self = .object(try container.decode([String: JSONLValue].self))
        }
    }

    /// The value as metadata text, for scalars (string, number, bool) only.
    var scalarText: String? {
        switch self {
        case .string(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        case .array, .object, .null: return nil
        }
    }
}
