extension Evaluator {
    /// Scores a judge model's `reply` for an `llm_judge` spec (phase 2).
    ///
    /// On success: `score` is the judge's integer score, `reason` its
    /// explanation, `details["normalized"] = (score - min) / (max - min)`.
    /// An unparsable or out-of-range reply, or a non-judge spec, gives a result
    /// with `error` set (e.g. `judge score 7 is outside [1, 5]`).
    public static func judgeResult(_ spec: EvaluatorSpec, reply: String) -> EvaluatorResult {
        guard case .llmJudge(let judge) = spec.options else {
            return .failure(spec.name, "evaluator '\(spec.name)' is \(spec.kind.rawValue), not llm_judge")
        }
        switch JudgeParser.parse(reply, min: judge.minScore, max: judge.maxScore) {
        case .success(let verdict):
            let span = Double(judge.maxScore) - Double(judge.minScore)
            let normalized = (Double(verdict.score) - Double(judge.minScore)) / span
            return Scored(
                score: Double(verdict.score),
                reason: verdict.reason.isEmpty ? nil : verdict.reason,
                details: ["normalized": normalized]
            ).result(named: spec.name)
        case .failure(let error):
            return .failure(spec.name, error.description)
        }
    }
}
