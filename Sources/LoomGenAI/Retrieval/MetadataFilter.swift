/// A conjunction of conditions on string metadata.
///
/// JSON form: an object mapping metadata keys to either a plain value
/// (equality) or an object with exactly one operator:
/// `{"lang": "en", "section": {"in": ["a", "b"]}, "draft": {"ne": "true"}}`.
/// Operators: `eq`, `ne`, `in`. Booleans and numbers are accepted as values
/// and compared in their JSON text form (`true`, `42`). Unknown operators
/// are rejected when decoding.
public struct MetadataFilter: Sendable, Hashable, Codable {
    /// One condition on one metadata key.
    public enum Condition: Sendable, Hashable {
        /// The key is present with exactly this value.
        case equals(String)
        /// The key is absent or has a different value.
        case notEquals(String)
        /// The key is present with one of these values.
        case oneOf([String])

        /// Whether `value` (the key's value, `nil` when absent) satisfies the condition.
        public func matches(_ value: String?) -> Bool {
            switch self {
            case .equals(let expected): return value == expected
            case .notEquals(let excluded): return value != excluded
            case .oneOf(let allowed): return value.map(allowed.contains) ?? false
            }
        }
    }

    /// The conditions by metadata key; all must hold.
    public var conditions: [String: Condition]

    /// Creates a filter; an empty filter matches everything.
    public init(_ conditions: [String: Condition] = [:]) {
        self.conditions = conditions
    }

    /// `true` if `metadata` satisfies every condition.
    public func matches(_ metadata: [String: String]) -> Bool {
        conditions.allSatisfy { key, condition in condition.matches(metadata[key]) }
    }
}
