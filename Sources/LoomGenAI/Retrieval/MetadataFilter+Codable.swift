extension MetadataFilter {
    /// A JSON object key known only at run time.
    private struct DynamicKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// A JSON string, bool or number, as text.
    private struct ScalarText: Decodable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(String.self) {
                text = value
            } else if let value = try? container.decode(Bool.self) {
                text = value ? "true" : "false"
            } else if let value = try? container.decode(Int64.self) {
                text = String(value)
            } else if let value = try? container.decode(Double.self) {
                text = String(value)
            } else {
                throw DecodingError.typeMismatch(String.self, DecodingError.Context(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a string, number or boolean"))
            }
        }
    }

    private static let operators = ["eq", "ne", "in"]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: DynamicKey.self)
        var conditions: [String: Condition] = [:]
        for key in container.allKeys {
            if let value = try? container.decode(ScalarText.self, forKey: key) {
                conditions[key.stringValue] = .equals(value.text)
                continue
            }
            guard let operators = try? container.nestedContainer(keyedBy: DynamicKey.self, forKey: key) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container,
                    debugDescription: "filter on \"\(key.stringValue)\" must be a value or an object with one operator (eq, ne, in)")
            }
            conditions[key.stringValue] = try Self.condition(operators, key: key.stringValue)
        }
        self.init(conditions)
    }

    /// Decodes `{"eq": v}`, `{"ne": v}` or `{"in": [v, …]}`.
    private static func condition(
        _ container: KeyedDecodingContainer<DynamicKey>, key: String
    ) throws -> Condition {
        let names = container.allKeys.map(\.stringValue).sorted()
        if let unknown = names.first(where: { !operators.contains($0) }) {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: container.codingPath,
                debugDescription: "unknown filter operator \"\(unknown)\" for \"\(key)\" (expected eq, ne or in)"))
        }
        guard names.count == 1, let name = names.first else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: container.codingPath,
                debugDescription: "filter on \"\(key)\" must have exactly one operator (eq, ne or in)"))
        }
        let operatorKey = DynamicKey(stringValue: name)
        switch name {
        case "eq": return .equals(try container.decode(ScalarText.self, forKey: operatorKey).text)
        case "ne": return .notEquals(try container.decode(ScalarText.self, forKey: operatorKey).text)
        default: return .oneOf(try container.decode([ScalarText].self, forKey: operatorKey).map(\.text))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        for key in conditions.keys.sorted() {
            guard let condition = conditions[key] else { continue }
            let codingKey = DynamicKey(stringValue: key)
            switch condition {
            case .equals(let value):
                try container.encode(value, forKey: codingKey)
            case .notEquals(let value):
                try container.encode(["ne": value], forKey: codingKey)
            case .oneOf(let values):
                try container.encode(["in": values], forKey: codingKey)
            }
        }
    }
}
