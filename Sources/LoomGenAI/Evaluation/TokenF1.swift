/// SQuAD token-level F1, as `compute_f1` in the official SQuAD v2.0 script.
public enum TokenF1: Sendable {
    /// Tokens are `SQuADNormalizer.tokens`. If either side has no tokens the
    /// result is 1 when both are empty and 0 otherwise. Otherwise the overlap is
    /// the multiset intersection size (Python `Counter &`), precision =
    /// overlap / |prediction|, recall = overlap / |reference|, F1 = 2PR/(P+R).
    public static func compute(prediction: String, reference: String) -> PrecisionRecall {
        let predicted = SQuADNormalizer.tokens(prediction)
        let gold = SQuADNormalizer.tokens(reference)
        if predicted.isEmpty || gold.isEmpty {
            return predicted.isEmpty && gold.isEmpty
                ? PrecisionRecall(precision: 1, recall: 1, f1: 1)
                : .zero
        }
        var goldCounts: [String: Int] = [:]
        for token in gold { goldCounts[token, default: 0] += 1 }
        var overlap = 0
        for token in predicted {
            if let remaining = goldCounts[token], remaining > 0 {
                goldCounts[token] = remaining - 1
                overlap += 1
            }
        }
        return .from(matches: overlap, predictionLength: predicted.count, referenceLength: gold.count)
    }
}
