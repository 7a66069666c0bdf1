import LoomCore

/// Two variants of an evaluation row by row (docs/evaluation.md, "Comparing variants"): each
/// row's answers, the metric's scores and which variant did better, the rows that differ most
/// first.
public struct EvaluationDiff: Sendable, Encodable {
    public struct Side: Sendable, Encodable {
        public var answer: String?
        public var score: Double?
        public var error: String?
        public var traceId: String?
    }

    public struct Entry: Sendable, Encodable {
        public var row: Int
        public var question: String
        public var a: Side
        public var b: Side
        /// `b.score - a.score` when both scored.
        public var delta: Double?
        public var winner: VariantComparison.Winner
    }

    public var metric: String
    public var a: String
    public var b: String
    public var winsA: Int
    public var winsB: Int
    public var ties: Int
    /// Rows whose answers or scores differ, when only those were asked for; else every row.
    public var rows: [Entry]

    /// Compares variants `a` and `b` of `report` on `metric` (default: its first evaluator).
    public init(report: EvaluationReport, a: String?, b: String?, metric: String?, changedOnly: Bool, limit: Int) throws(LoomError) {
        let names = report.variants.map(\.name)
        guard names.count >= 2 || (a != nil && b != nil) else {
            throw .invalidParameter("the evaluation has one variant (\(names.joined())): a diff needs two")
        }
        let nameA = a ?? names[0]
        let nameB = b ?? names.first { $0 != nameA } ?? names[1]
        guard let va = report.variants.first(where: { $0.name == nameA }) else { throw .invalidParameter("a: no variant \(nameA) (it has: \(names.joined(separator: ", ")))") }
        guard let vb = report.variants.first(where: { $0.name == nameB }) else { throw .invalidParameter("b: no variant \(nameB) (it has: \(names.joined(separator: ", ")))") }
        let metrics = Set((va.rows + vb.rows).flatMap { $0.scores.map(\.name) })
        let chosen = metric ?? va.rows.first?.scores.first?.name ?? metrics.sorted().first ?? ""
        guard metric == nil || metrics.contains(chosen) else {
            throw .invalidParameter("metric: no evaluator \(chosen) (it has: \(metrics.sorted().joined(separator: ", ")))")
        }
        let lowerIsBetter = chosen.contains("latency") || chosen.contains("cost")
        let rowsB = Dictionary(vb.rows.map { ($0.row, $0) }, uniquingKeysWith: { x, _ in x })
        var entries: [Entry] = []
        var wins = (a: 0, b: 0, ties: 0)
        for ra in va.rows {
            guard let rb = rowsB[ra.row] else { continue }
            func side(_ r: EvaluationReport.RowResult) -> Side {
                Side(answer: r.answer, score: r.scores.first { $0.name == chosen }?.score, error: r.error, traceId: r.traceId)
            }
            let sa = side(ra)
            let sb = side(rb)
            var delta: Double?
            var winner = VariantComparison.Winner.undecided
            if let x = sa.score, let y = sb.score {
                delta = y - x
                if abs(y - x) <= 1e-9 {
                    winner = .tie
                } else {
                    winner = (y > x) != lowerIsBetter ? .b : .a
                }
            }
            switch winner {
            case .a: wins.a += 1
            case .b: wins.b += 1
            case .tie: wins.ties += 1
            case .undecided: break
            }
            if changedOnly, sa.answer == sb.answer, winner == .tie { continue }
            entries.append(Entry(row: ra.row, question: ra.question, a: sa, b: sb, delta: delta, winner: winner))
        }
        entries.sort { x, y in
            let dx = x.delta.map(abs) ?? -1
            let dy = y.delta.map(abs) ?? -1
            return dx != dy ? dx > dy : x.row < y.row
        }
        self.metric = chosen
        self.a = nameA
        self.b = nameB
        self.winsA = wins.a
        self.winsB = wins.b
        self.ties = wins.ties
        self.rows = Array(entries.prefix(max(0, limit)))
    }
}
