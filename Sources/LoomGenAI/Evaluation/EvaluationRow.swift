/// One dataset row to evaluate: the question, the model's answer and whatever
/// references and measurements are available. JSON keys are snake_case
/// (`latency_ms`, `answer_embedding`, ...).
public struct EvaluationRow: Sendable, Equatable, Codable {
    public var question: String
    public var answer: String
    /// Retrieved context the answer should be grounded in.
    public var context: String?
    /// The reference ("gold") answer.
    public var expected: String?
    /// Retrieved document ids, best first.
    public var retrieved: [String]?
    /// Ids labeled relevant for the question.
    public var relevant: [String]?
    /// Measured end-to-end latency in milliseconds.
    public var latencyMs: Double?
    /// Measured cost of producing the answer (any currency unit).
    public var cost: Double?
    /// Embedding of `answer` (computed elsewhere).
    public var answerEmbedding: [Double]?
    /// Embedding of `expected` (computed elsewhere).
    public var expectedEmbedding: [Double]?

    public init(
        question: String,
        answer: String,
        context: String? = nil,
        expected: String? = nil,
        retrieved: [String]? = nil,
        relevant: [String]? = nil,
        latencyMs: Double? = nil,
        cost: Double? = nil,
        answerEmbedding: [Double]? = nil,
        expectedEmbedding: [Double]? = nil
    ) {
        self.question = question
        self.answer = answer
        self.context = context
        self.expected = expected
        self.retrieved = retrieved
        self.relevant = relevant
        self.latencyMs = latencyMs
        self.cost = cost
        self.answerEmbedding = answerEmbedding
        self.expectedEmbedding = expectedEmbedding
    }

    enum CodingKeys: String, CodingKey {
        case question, answer, context, expected, retrieved, relevant, cost
        case latencyMs = "latency_ms"
        case answerEmbedding = "answer_embedding"
        case expectedEmbedding = "expected_embedding"
    }
}
