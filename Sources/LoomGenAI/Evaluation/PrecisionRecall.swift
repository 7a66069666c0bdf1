/// Precision, recall and their harmonic mean (F1).
public struct PrecisionRecall: Sendable, Equatable {
    public var precision: Double
    public var recall: Double
    public var f1: Double

    public init(precision: Double, recall: Double, f1: Double) {
        self.precision = precision
        self.recall = recall
        self.f1 = f1
    }

    /// All three zero.
    public static let zero = PrecisionRecall(precision: 0, recall: 0, f1: 0)

    /// Builds P, R and F1 = 2PR/(P+R) (0 when P+R is 0) from a match count.
    /// Callers guarantee both lengths are positive.
    static func from(matches: Int, predictionLength: Int, referenceLength: Int) -> PrecisionRecall {
        guard matches > 0, predictionLength > 0, referenceLength > 0 else { return .zero }
        let precision = Double(matches) / Double(predictionLength)
        let recall = Double(matches) / Double(referenceLength)
        let f1 = 2 * precision * recall / (precision + recall)
        return PrecisionRecall(precision: precision, recall: recall, f1: f1)
    }
}
