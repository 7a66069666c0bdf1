/// Side-by-side comparison of two variants (A and B) evaluated on the same dataset.
///
/// Inputs map a row id to that row's results (one per evaluator). Per metric,
/// each variant's mean is taken over its own rows with a finite score (so a
/// variant's errors do not drag its mean), and `delta = meanB - meanA`. Per row,
/// the chosen metric decides the winner. All lists are sorted (metrics by
/// name, rows by id), so the output is deterministic.
public struct VariantComparison: Sendable, Equatable, Codable {
    /// Means of one metric for both variants.
    public struct MetricSummary: Sendable, Equatable, Codable {
        public var metric: String
        public var meanA: Double?
        public var meanB: Double?
        /// `meanB - meanA`, `nil` when either mean is missing.
        public var delta: Double?

        enum CodingKeys: String, CodingKey {
            case metric, delta
            case meanA = "mean_a"
            case meanB = "mean_b"
        }
    }

    /// Which variant did better on a row.
    public enum Winner: String, Sendable, Codable {
        case a, b, tie
        /// The row lacks a finite score for the metric in A or B.
        case undecided
    }

    /// The chosen metric's scores on one row and the winner.
    public struct RowOutcome: Sendable, Equatable, Codable {
        public var rowId: String
        public var scoreA: Double?
        public var scoreB: Double?
        public var winner: Winner

        enum CodingKeys: String, CodingKey {
            case winner
            case rowId = "row_id"
            case scoreA = "score_a"
            case scoreB = "score_b"
        }
    }

    /// The metric deciding per-row winners.
    public var metric: String
    /// Whether a larger score wins (`false` for latency or cost).
    public var higherIsBetter: Bool
    public var metrics: [MetricSummary]
    public var rows: [RowOutcome]
    public var winsA: Int
    public var winsB: Int
    public var ties: Int

    /// Compares `a` and `b`. Scores within 1e-9 of each other tie. If a row
    /// has several results with the same name, the first one is used.
    public init(
        a: [String: [EvaluatorResult]],
        b: [String: [EvaluatorResult]],
        metric: String,
        higherIsBetter: Bool = true
    ) {
        self.metric = metric
        self.higherIsBetter = higherIsBetter
        let names = Set(a.values.joined().map(\.name)).union(b.values.joined().map(\.name)).sorted()
        metrics = names.map { name in
            let meanA = Self.mean(of: name, in: a)
            let meanB = Self.mean(of: name, in: b)
            let delta = meanA.flatMap { meanA in meanB.map { $0 - meanA } }
            return MetricSummary(metric: name, meanA: meanA, meanB: meanB, delta: delta)
        }
        rows = Set(a.keys).union(b.keys).sorted().map { rowId in
            let scoreA = a[rowId].flatMap { Self.score(of: metric, in: $0) }
            let scoreB = b[rowId].flatMap { Self.score(of: metric, in: $0) }
            let winner = Self.winner(scoreA, scoreB, higherIsBetter: higherIsBetter)
            return RowOutcome(rowId: rowId, scoreA: scoreA, scoreB: scoreB, winner: winner)
        }
        winsA = rows.filter { $0.winner == .a }.count
        winsB = rows.filter { $0.winner == .b }.count
        ties = rows.filter { $0.winner == .tie }.count
    }

    private static func score(of metric: String, in results: [EvaluatorResult]) -> Double? {
        guard let score = results.first(where: { $0.name == metric })?.score, score.isFinite else { return nil }
        return score
    }

    private static func mean(of metric: String, in variant: [String: [EvaluatorResult]]) -> Double? {
        // Sum in row-id order so the floating-point result is reproducible.
        let scores = variant.keys.sorted().compactMap { variant[$0].flatMap { score(of: metric, in: $0) } }
        guard !scores.isEmpty else { return nil }
        return scores.reduce(0, +) / Double(scores.count)
    }

    private static func winner(_ scoreA: Double?, _ scoreB: Double?, higherIsBetter: Bool) -> Winner {
        guard let scoreA, let scoreB else { return .undecided }
        if abs(scoreA - scoreB) <= 1e-9 { return .tie }
        return (scoreA > scoreB) == higherIsBetter ? .a : .b
    }

    enum CodingKeys: String, CodingKey {
        case metric, metrics, rows, ties
        case higherIsBetter = "higher_is_better"
        case winsA = "wins_a"
        case winsB = "wins_b"
    }
}
