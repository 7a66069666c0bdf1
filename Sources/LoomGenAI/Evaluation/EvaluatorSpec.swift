import Foundation

/// One configured evaluator: a display `name` plus its kind and options.
///
/// Decode it from JSON/YAML-shaped data with `init(json:path:)`,
/// `init(dictionary:path:)`, `decodeList(_:path:)` or `Codable`; all of them
/// validate and throw `EvaluatorSpecError` naming the offending field.
/// Specs built in code are not validated until `validate()` is called; the
/// evaluator still never crashes on an invalid spec, it reports an error instead.
public struct EvaluatorSpec: Sendable, Equatable {
    /// The name results and aggregates are reported under.
    public var name: String
    /// The kind and its options.
    public var options: EvaluatorOptions

    /// The evaluator kind.
    public var kind: EvaluatorKind { options.kind }

    /// Creates a spec; `name` defaults to `defaultName(for:)`.
    public init(name: String? = nil, options: EvaluatorOptions) {
        self.name = name ?? EvaluatorSpec.defaultName(for: options)
        self.options = options
    }

    /// The name used when none is configured: the rubric for a built-in
    /// `llm_judge` rubric (e.g. `groundedness`), otherwise the kind string.
    public static func defaultName(for options: EvaluatorOptions) -> String {
        if case .llmJudge(let judge) = options, judge.rubric != .custom {
            return judge.rubric.rawValue
        }
        return options.kind.rawValue
    }

    /// Checks the option values (regex and schema patterns compile, `k >= 1`,
    /// thresholds finite, judge score range non-empty, custom rubric has a prompt).
    /// The error's `field` is relative to the spec (e.g. `pattern`).
    public func validate() throws(EvaluatorSpecError) {
        if name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw EvaluatorSpecError(field: "name", message: "must not be empty")
        }
        switch options {
        case .exactMatch, .jsonValid, .tokenF1, .rougeL, .pii:
            return
        case .promptInjection(let threshold):
            if !(threshold > 0 && threshold <= 1) { throw EvaluatorSpecError(field: "threshold", message: "must be above 0 and at most 1") }
        case .contains(let values, _, _):
            for (index, value) in values.enumerated() where value.isEmpty {
                throw EvaluatorSpecError(field: "values[\(index)]", message: "must not be empty")
            }
        case .regex(let pattern, let caseSensitive):
            if case .failure(let error) = RegexSupport.compile(pattern, caseSensitive: caseSensitive) {
                throw EvaluatorSpecError(field: "pattern", message: error.message)
            }
        case .jsonSchema(let schema):
            try JSONSchemaValidator.checkSchema(schema, path: "schema")
        case .embeddingSimilarity(let threshold):
            try Self.requireFinite(threshold, field: "threshold")
        case .hitRate(let k), .mrr(let k), .ndcg(let k):
            if k < 1 { throw EvaluatorSpecError(field: "k", message: "must be at least 1, got \(k)") }
        case .latency(let max), .cost(let max):
            try Self.requireFinite(max, field: "max")
        case .llmJudge(let judge):
            try Self.validate(judge)
        }
    }

    private static func requireFinite(_ value: Double?, field: String) throws(EvaluatorSpecError) {
        if let value, !value.isFinite {
            throw EvaluatorSpecError(field: field, message: "must be a finite number")
        }
    }

    private static func validate(_ judge: JudgeOptions) throws(EvaluatorSpecError) {
        if judge.minScore >= judge.maxScore {
            throw EvaluatorSpecError(
                field: "max_score",
                message: "must be greater than min_score (\(judge.minScore)), got \(judge.maxScore)"
            )
        }
        if let prompt = judge.prompt, prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw EvaluatorSpecError(field: "prompt", message: "must not be empty")
        }
        if judge.rubric == .custom, judge.prompt == nil, judge.promptRef == nil {
            throw EvaluatorSpecError(field: "prompt", message: "required when rubric is custom (or prompt_ref, a registry prompt)")
        }
        if let model = judge.model, model.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw EvaluatorSpecError(field: "model", message: "must not be empty")
        }
    }
}
