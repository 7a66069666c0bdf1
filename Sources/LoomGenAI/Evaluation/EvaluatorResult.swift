/// The outcome of one evaluator on one row. JSON keys: `name`, `score`,
/// `passed`, `reason`, `details`, `error`.
///
/// Exactly one of `score` / `error` is normally set. Scores and detail values
/// are always finite (non-finite values are turned into an error by
/// `Evaluator`), so results always encode with `JSONEncoder`.
public struct EvaluatorResult: Sendable, Equatable, Codable {
    /// The evaluator's name (`EvaluatorSpec.name`).
    public var name: String
    /// The metric value, `nil` when the evaluator failed.
    public var score: Double?
    /// Pass/fail, when the evaluator defines one (e.g. a `max` threshold).
    public var passed: Bool?
    /// Human-readable explanation (e.g. the first JSON Schema violation).
    public var reason: String?
    /// Secondary values such as `precision` and `recall`.
    public var details: [String: Double]
    /// Why no score could be computed (missing input, invalid spec, unparsable judge reply).
    public var error: String?

    public init(
        name: String,
        score: Double? = nil,
        passed: Bool? = nil,
        reason: String? = nil,
        details: [String: Double] = [:],
        error: String? = nil
    ) {
        self.name = name
        self.score = score
        self.passed = passed
        self.reason = reason
        self.details = details
        self.error = error
    }

    /// A failed result carrying only `error`.
    public static func failure(_ name: String, _ error: String) -> EvaluatorResult {
        EvaluatorResult(name: name, error: error)
    }

    enum CodingKeys: String, CodingKey {
        case name, score, passed, reason, details, error
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        score = try container.decodeIfPresent(Double.self, forKey: .score)
        passed = try container.decodeIfPresent(Bool.self, forKey: .passed)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        details = try container.decodeIfPresent([String: Double].self, forKey: .details) ?? [:]
        error = try container.decodeIfPresent(String.self, forKey: .error)
    }
}
