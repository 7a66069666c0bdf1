/// A comparison used by a gate condition.
public enum GateOperator: String, Sendable, Codable, CaseIterable {
    case atLeast = ">="
    case atMost = "<="
    case lessThan = "<"
    case greaterThan = ">"

    /// Whether `actual <op> threshold` holds.
    public func holds(_ actual: Double, _ threshold: Double) -> Bool {
        switch self {
        case .atLeast: actual >= threshold
        case .atMost: actual <= threshold
        case .lessThan: actual < threshold
        case .greaterThan: actual > threshold
        }
    }
}

/// One parsed condition such as `groundedness>=4` or `latency.p50<800`.
public struct GateCondition: Sendable, Equatable, Codable {
    /// Evaluator name.
    public var metric: String
    /// The aggregate statistic tested (`mean` unless a `.stat` suffix is given).
    public var statistic: AggregateStatistic
    public var op: GateOperator
    public var threshold: Double

    public init(metric: String, statistic: AggregateStatistic = .mean, op: GateOperator, threshold: Double) {
        self.metric = metric
        self.statistic = statistic
        self.op = op
        self.threshold = threshold
    }
}

/// The result of checking one condition.
public struct GateOutcome: Sendable, Equatable, Codable {
    public var metric: String
    public var statistic: AggregateStatistic
    public var op: GateOperator
    public var threshold: Double
    /// The aggregate value compared, `nil` when unavailable.
    public var actual: Double?
    public var passed: Bool
    /// Why the condition failed without a comparison (`metric not computed`).
    public var reason: String?
}

/// A clear message for a malformed gate string.
public struct GateParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
