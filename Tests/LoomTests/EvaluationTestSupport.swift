@testable import LoomGenAI

/// |a - b| <= tolerance, false when `a` is nil.
func evalApprox(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

func evalRow(
    _ answer: String,
    expected: String? = nil,
    question: String = "q",
    context: String? = nil
) -> EvaluationRow {
    EvaluationRow(question: question, answer: answer, context: context, expected: expected)
}

func evalRun(_ options: EvaluatorOptions, _ row: EvaluationRow) -> EvaluatorResult {
    Evaluator.evaluate(EvaluatorSpec(options: options), row: row)
}
