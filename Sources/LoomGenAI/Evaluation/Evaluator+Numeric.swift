extension Evaluator {
    /// `embedding_similarity`: cosine of `answerEmbedding` and
    /// `expectedEmbedding`; `passed = score >= threshold` when a threshold is set.
    static func embeddingSimilarity(row: EvaluationRow, threshold: Double?) throws(EvaluationFailure) -> Scored {
        guard let answer = row.answerEmbedding else { throw EvaluationFailure("row has no answer embedding") }
        guard let expected = row.expectedEmbedding else { throw EvaluationFailure("row has no expected embedding") }
        do throws(CosineSimilarity.Failure) {
            let similarity = try CosineSimilarity.compute(answer, expected)
            return Scored(score: similarity, passed: threshold.map { similarity >= $0 })
        } catch {
            throw EvaluationFailure(error.description)
        }
    }

    /// `hit_rate`, `mrr`, `ndcg` at `k` over the row's `retrieved` and `relevant` ids.
    /// Details: `k`; `mrr` adds `rank` of the first hit; `ndcg` adds `dcg`, `idcg`.
    static func retrieval(_ kind: EvaluatorKind, row: EvaluationRow, k: Int) throws(EvaluationFailure) -> Scored {
        guard let retrieved = row.retrieved else { throw EvaluationFailure("row has no retrieved ids") }
        let relevant = Set(row.relevant ?? [])
        do throws(RetrievalMetrics.Failure) {
            var details: [String: Double] = ["k": Double(k)]
            switch kind {
            case .hitRate:
                return Scored(score: try RetrievalMetrics.hitRate(retrieved: retrieved, relevant: relevant, k: k), details: details)
            case .mrr:
                let reciprocal = try RetrievalMetrics.reciprocalRank(retrieved: retrieved, relevant: relevant, k: k)
                if reciprocal > 0 { details["rank"] = (1 / reciprocal).rounded() }
                return Scored(score: reciprocal, details: details)
            default:
                let (dcg, idcg) = try RetrievalMetrics.dcg(retrieved: retrieved, relevant: relevant, k: k)
                details["dcg"] = dcg
                details["idcg"] = idcg
                return Scored(score: dcg / idcg, details: details)
            }
        } catch {
            throw EvaluationFailure(error.description)
        }
    }

    /// `latency` / `cost`: the measured value itself; `passed = value <= max`
    /// when `max` is set.
    static func measurement(_ value: Double?, max: Double?, label: String, unit: String) throws(EvaluationFailure) -> Scored {
        guard let value else { throw EvaluationFailure("row has no \(label) measurement") }
        guard value.isFinite else { throw EvaluationFailure("\(label) is not a finite number") }
        guard let max else { return Scored(score: value) }
        let ok = value <= max
        let reason = ok ? nil
            : "\(label) \(NumberFormatting.format(value))\(unit) exceeds max \(NumberFormatting.format(max))\(unit)"
        return Scored(score: value, passed: ok, reason: reason)
    }
}
