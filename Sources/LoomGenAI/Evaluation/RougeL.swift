/// ROUGE-L as Google's `rouge-score` package computes
/// `RougeScorer(['rougeL']).score(target, prediction)` with the default
/// tokenizer and no stemmer.
public enum RougeL: Sendable {
    /// `rouge_score.tokenize`: lowercase, replace every character outside
    /// `[a-z0-9]` with a space, split on whitespace, keep tokens matching
    /// `^[a-z0-9]+$`.
    public static func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if isASCIIAlphanumeric(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                tokens.append(current)
                current = ""
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    /// `_score_lcs`: with L = length of the longest common subsequence of the
    /// token lists, precision = L / |prediction|, recall = L / |target|,
    /// F = 2PR/(P+R). All zero when either token list is empty.
    public static func score(target: String, prediction: String) -> PrecisionRecall {
        let targetTokens = tokenize(target)
        let predictionTokens = tokenize(prediction)
        guard !targetTokens.isEmpty, !predictionTokens.isEmpty else { return .zero }
        let lcs = lcsLength(targetTokens, predictionTokens)
        return .from(matches: lcs, predictionLength: predictionTokens.count, referenceLength: targetTokens.count)
    }

    /// Length of the longest common subsequence (two-row dynamic programme,
    /// O(|a|·|b|) time, O(|b|) memory).
    public static func lcsLength(_ a: [String], _ b: [String]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: b.count + 1)
        var current = previous
        for tokenA in a {
            for (j, tokenB) in b.enumerated() {
                current[j + 1] = tokenA == tokenB ? previous[j] + 1 : max(previous[j + 1], current[j])
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    private static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
