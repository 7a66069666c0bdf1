/// Summary statistics of one evaluator over many rows. JSON keys:
/// `count`, `errors`, `mean`, `min`, `max`, `p50`, `pass_rate`.
public struct Aggregate: Sendable, Equatable, Codable {
    /// Number of results, including errored ones.
    public var count: Int
    /// Number of results with `error` set.
    public var errors: Int
    /// Arithmetic mean of the finite scores; `nil` when there are none.
    public var mean: Double?
    public var min: Double?
    public var max: Double?
    /// Median of the finite scores (average of the two middle values for an
    /// even count, i.e. numpy's default linear interpolation at q = 0.5).
    public var p50: Double?
    /// Fraction of results with `passed == true` among those with `passed`
    /// set; `nil` when no result has a pass/fail.
    public var passRate: Double?

    public init(count: Int, errors: Int, mean: Double?, min: Double?, max: Double?, p50: Double?, passRate: Double?) {
        self.count = count
        self.errors = errors
        self.mean = mean
        self.min = min
        self.max = max
        self.p50 = p50
        self.passRate = passRate
    }

    /// The value of `statistic`, or `nil` when it is undefined.
    public func value(of statistic: AggregateStatistic) -> Double? {
        switch statistic {
        case .mean: mean
        case .min: min
        case .max: max
        case .p50: p50
        case .passRate: passRate
        }
    }

    enum CodingKeys: String, CodingKey {
        case count, errors, mean, min, max, p50
        case passRate = "pass_rate"
    }
}

/// A statistic of an `Aggregate` that a gate can test.
public enum AggregateStatistic: String, Sendable, Codable, CaseIterable {
    case mean, min, max, p50
    case passRate = "pass_rate"
}

/// Aggregation of evaluator results.
public enum Aggregates: Sendable {
    /// Aggregates results of one evaluator (names are not checked).
    /// Non-finite scores are ignored for the statistics.
    public static func aggregate(_ results: [EvaluatorResult]) -> Aggregate {
        let scores = results.compactMap(\.score).filter(\.isFinite).sorted()
        let verdicts = results.compactMap(\.passed)
        return Aggregate(
            count: results.count,
            errors: results.filter { $0.error != nil }.count,
            mean: scores.isEmpty ? nil : scores.reduce(0, +) / Double(scores.count),
            min: scores.first,
            max: scores.last,
            p50: median(ofSorted: scores),
            passRate: verdicts.isEmpty ? nil : Double(verdicts.filter { $0 }.count) / Double(verdicts.count)
        )
    }

    /// Groups results by `name` and aggregates each group.
    public static func byName(_ results: [EvaluatorResult]) -> [String: Aggregate] {
        Dictionary(grouping: results, by: \.name).mapValues(aggregate)
    }

    static func median(ofSorted values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let middle = values.count / 2
        if values.count % 2 == 1 { return values[middle] }
        return (values[middle - 1] + values[middle]) / 2
    }
}
