import Foundation

/// Quality gate: comma-separated conditions `metric<op>threshold`.
///
/// `<op>` is `=`, `>=`, `<=`, `<` or `>`; `=` means "statistic ≥ threshold".
/// The metric is an evaluator name, optionally suffixed with a statistic
/// (`.mean`, `.min`, `.max`, `.p50`, `.pass_rate`; default `mean`), e.g.
/// `groundedness=4.0,hit_rate=0.8,latency.p50<=800`. Whitespace around parts
/// and empty clauses are ignored.
public struct Gate: Sendable, Equatable {
    public var conditions: [GateCondition]

    public init(conditions: [GateCondition]) {
        self.conditions = conditions
    }

    /// Parses a gate string; errors read `bad gate '<clause>': <problem>`.
    public init(parsing text: String) throws(GateParseError) {
        var conditions: [GateCondition] = []
        for rawClause in text.split(separator: ",", omittingEmptySubsequences: false) {
            let clause = rawClause.trimmingCharacters(in: .whitespacesAndNewlines)
            if clause.isEmpty { continue }
            conditions.append(try Self.parseClause(clause))
        }
        self.conditions = conditions
    }

    private static func parseClause(_ clause: String) throws(GateParseError) -> GateCondition {
        func bad(_ problem: String) -> GateParseError {
            GateParseError(message: "bad gate '\(clause)': \(problem)")
        }
        guard let opStart = clause.firstIndex(where: { "<>=".contains($0) }) else {
            throw bad("missing operator (use =, >=, <=, <, >)")
        }
        let name = clause[..<opStart].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw bad("missing metric name") }
        var rest = clause[clause.index(after: opStart)...]
        let op: GateOperator
        switch clause[opStart] {
        case "=": op = .atLeast
        case "<" where rest.first == "=": op = .atMost; rest = rest.dropFirst()
        case ">" where rest.first == "=": op = .atLeast; rest = rest.dropFirst()
        case "<": op = .lessThan
        default: op = .greaterThan
        }
        let thresholdText = rest.trimmingCharacters(in: .whitespaces)
        guard let threshold = Double(thresholdText), threshold.isFinite else {
            throw bad("threshold is not a number")
        }
        let (metric, statistic) = splitStatistic(name)
        guard !metric.isEmpty else { throw bad("missing metric name") }
        return GateCondition(metric: metric, statistic: statistic, op: op, threshold: threshold)
    }

    /// `latency.p50` → (`latency`, `.p50`); names without a known suffix use `mean`.
    private static func splitStatistic(_ name: String) -> (String, AggregateStatistic) {
        guard let dot = name.lastIndex(of: "."),
              let statistic = AggregateStatistic(rawValue: String(name[name.index(after: dot)...]))
        else { return (name, .mean) }
        return (String(name[..<dot]), statistic)
    }

    /// Checks every condition against `aggregates` (keyed by evaluator name),
    /// in order. A metric missing from `aggregates` fails with reason
    /// `metric not computed`; an undefined statistic (no scored rows, or no
    /// pass/fail results for `pass_rate`) fails with reason `no value for <stat>`.
    public func check(aggregates: [String: Aggregate]) -> [GateOutcome] {
        conditions.map { condition in
            var outcome = GateOutcome(
                metric: condition.metric,
                statistic: condition.statistic,
                op: condition.op,
                threshold: condition.threshold,
                actual: nil,
                passed: false,
                reason: nil
            )
            guard let aggregate = aggregates[condition.metric] else {
                outcome.reason = "metric not computed"
                return outcome
            }
            guard let actual = aggregate.value(of: condition.statistic), actual.isFinite else {
                outcome.reason = "no value for \(condition.statistic.rawValue)"
                return outcome
            }
            outcome.actual = actual
            outcome.passed = condition.op.holds(actual, condition.threshold)
            return outcome
        }
    }

    /// Whether every outcome passed (true for an empty gate).
    public static func allPassed(_ outcomes: [GateOutcome]) -> Bool {
        outcomes.allSatisfy(\.passed)
    }
}
