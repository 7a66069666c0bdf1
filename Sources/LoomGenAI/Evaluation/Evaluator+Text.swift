import Foundation

extension Evaluator {
    /// `exact_match`: 1 when `SQuADNormalizer.normalize(answer) ==
    /// normalize(expected)` (SQuAD `compute_exact`). With `normalize: false` the
    /// whitespace-trimmed strings are compared, case-insensitively unless
    /// `caseSensitive`.
    static func exactMatch(row: EvaluationRow, normalize: Bool, caseSensitive: Bool) throws(EvaluationFailure) -> Scored {
        let expected = try expected(row)
        if normalize {
            return .binary(SQuADNormalizer.normalize(row.answer) == SQuADNormalizer.normalize(expected))
        }
        let answer = row.answer.trimmingCharacters(in: .whitespacesAndNewlines)
        let reference = expected.trimmingCharacters(in: .whitespacesAndNewlines)
        if caseSensitive { return .binary(answer == reference) }
        return .binary(answer.compare(reference, options: .caseInsensitive) == .orderedSame)
    }

    /// `contains`: 1 when the answer contains any (`mode: any`) or all
    /// (`mode: all`) of the values as substrings; with no values configured, the
    /// row's expected answer is the single value. Details: `matched`, `total`.
    static func contains(row: EvaluationRow, values: [String], mode: ContainsMode, caseSensitive: Bool) throws(EvaluationFailure) -> Scored {
        var needles = values
        if needles.isEmpty {
            let expected = try expected(row)
            guard !expected.isEmpty else { throw EvaluationFailure("expected answer is empty") }
            needles = [expected]
        }
        if needles.contains(where: \.isEmpty) { throw EvaluationFailure("contains value must not be empty") }
        let options: String.CompareOptions = caseSensitive ? [] : [.caseInsensitive]
        let missing = needles.filter { row.answer.range(of: $0, options: options) == nil }
        let matched = needles.count - missing.count
        let ok = mode == .all ? missing.isEmpty : matched > 0
        let reason: String? = ok ? nil : "missing " + missing.map { "'\($0)'" }.joined(separator: ", ")
        return .binary(ok, reason: reason, details: ["matched": Double(matched), "total": Double(needles.count)])
    }

    /// `regex`: 1 when the ICU pattern matches anywhere in the answer.
    static func regex(row: EvaluationRow, pattern: String, caseSensitive: Bool) throws(EvaluationFailure) -> Scored {
        switch RegexSupport.compile(pattern, caseSensitive: caseSensitive) {
        case .success(let regex): return .binary(RegexSupport.hasMatch(regex, in: row.answer))
        case .failure(let error): throw EvaluationFailure(error.message)
        }
    }

    /// `token_f1`: SQuAD token F1 of answer vs expected; details `precision`, `recall`.
    static func tokenF1(row: EvaluationRow) throws(EvaluationFailure) -> Scored {
        let prf = TokenF1.compute(prediction: row.answer, reference: try expected(row))
        return Scored(score: prf.f1, details: ["precision": prf.precision, "recall": prf.recall])
    }

    /// `rouge_l`: `RougeL.score(target: expected, prediction: answer)` F-measure;
    /// details `precision`, `recall`.
    static func rougeL(row: EvaluationRow) throws(EvaluationFailure) -> Scored {
        let prf = RougeL.score(target: try expected(row), prediction: row.answer)
        return Scored(score: prf.f1, details: ["precision": prf.precision, "recall": prf.recall])
    }
}
