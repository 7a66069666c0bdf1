/// Runs one evaluator spec against one row.
public enum Evaluator: Sendable {
    /// Evaluates `row` with `spec` for every kind except `llm_judge`.
    ///
    /// Never traps: missing inputs, invalid options and non-finite numbers
    /// become a result with `error` set and `score == nil`. For `llm_judge`
    /// the result is an error telling the caller to use `JudgePrompt.messages`
    /// and `judgeResult(_:reply:)`, because a model call is needed.
    public static func evaluate(_ spec: EvaluatorSpec, row: EvaluationRow) -> EvaluatorResult {
        do throws(EvaluationFailure) {
            let scored = try score(spec.options, row: row)
            return scored.result(named: spec.name)
        } catch {
            return .failure(spec.name, error.message)
        }
    }

    private static func score(_ options: EvaluatorOptions, row: EvaluationRow) throws(EvaluationFailure) -> Scored {
        switch options {
        case .exactMatch(let normalize, let caseSensitive):
            return try exactMatch(row: row, normalize: normalize, caseSensitive: caseSensitive)
        case .contains(let values, let mode, let caseSensitive):
            return try contains(row: row, values: values, mode: mode, caseSensitive: caseSensitive)
        case .regex(let pattern, let caseSensitive):
            return try regex(row: row, pattern: pattern, caseSensitive: caseSensitive)
        case .jsonValid:
            return jsonValid(row: row)
        case .jsonSchema(let schema):
            return jsonSchema(row: row, schema: schema)
        case .tokenF1:
            return try tokenF1(row: row)
        case .rougeL:
            return try rougeL(row: row)
        case .embeddingSimilarity(let threshold):
            return try embeddingSimilarity(row: row, threshold: threshold)
        case .hitRate(let k), .mrr(let k), .ndcg(let k):
            return try retrieval(options.kind, row: row, k: k)
        case .latency(let max):
            return try measurement(row.latencyMs, max: max, label: "latency", unit: " ms")
        case .cost(let max):
            return try measurement(row.cost, max: max, label: "cost", unit: "")
        case .pii(let types):
            return pii(row: row, types: types)
        case .promptInjection(let threshold):
            return promptInjection(row: row, threshold: threshold)
        case .llmJudge:
            throw EvaluationFailure(
                "llm_judge needs a model reply: build the prompt with JudgePrompt.messages and score it with Evaluator.judgeResult"
            )
        }
    }

    /// The row's expected answer, or a failure when it is missing.
    static func expected(_ row: EvaluationRow) throws(EvaluationFailure) -> String {
        guard let expected = row.expected else { throw EvaluationFailure("row has no expected answer") }
        return expected
    }
}

/// Why an evaluator could not produce a score.
struct EvaluationFailure: Error, Sendable {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}

/// A successful evaluation before it is named and sanitised.
struct Scored {
    var score: Double
    var passed: Bool?
    var reason: String?
    var details: [String: Double] = [:]

    /// A 1/0 score with `passed` mirroring it.
    static func binary(_ ok: Bool, reason: String? = nil, details: [String: Double] = [:]) -> Scored {
        Scored(score: ok ? 1 : 0, passed: ok, reason: reason, details: details)
    }

    /// The named result; a non-finite score becomes an error and non-finite
    /// detail values are dropped, so the result always JSON-encodes.
    func result(named name: String) -> EvaluatorResult {
        guard score.isFinite else { return .failure(name, "computed score is not a finite number") }
        return EvaluatorResult(
            name: name,
            score: score,
            passed: passed,
            reason: reason,
            details: details.filter { $0.value.isFinite }
        )
    }
}
