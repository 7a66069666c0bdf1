/// A parsed judge reply.
public struct JudgeVerdict: Sendable, Equatable {
    /// The integer score, within the evaluator's `[min_score, max_score]`.
    public var score: Int
    /// The judge's explanation (empty when the reply gave none).
    public var reason: String

    public init(score: Int, reason: String) {
        self.score = score
        self.reason = reason
    }
}

/// Why a judge reply could not be turned into a score.
public enum JudgeParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No score could be found in the reply.
    case noScore
    /// The score is not a whole number (the text as found).
    case notInteger(String)
    /// The score is outside `[min, max]`.
    case outOfRange(score: Int, min: Int, max: Int)
    /// `min >= max`.
    case invalidRange(min: Int, max: Int)

    public var description: String {
        switch self {
        case .noScore: "no score found in judge reply"
        case .notInteger(let text): "judge score '\(text)' is not an integer"
        case .outOfRange(let score, let min, let max): "judge score \(score) is outside [\(min), \(max)]"
        case .invalidRange(let min, let max): "invalid score range [\(min), \(max)]"
        }
    }
}
