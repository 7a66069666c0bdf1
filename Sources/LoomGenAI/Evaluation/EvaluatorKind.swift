/// The `kind` string of an evaluator spec.
public enum EvaluatorKind: String, Sendable, Codable, CaseIterable {
    case exactMatch = "exact_match"
    case contains
    case regex
    case jsonValid = "json_valid"
    case jsonSchema = "json_schema"
    case tokenF1 = "token_f1"
    case rougeL = "rouge_l"
    case embeddingSimilarity = "embedding_similarity"
    case hitRate = "hit_rate"
    case mrr
    case ndcg
    case latency
    case cost
    case llmJudge = "llm_judge"
    /// Safety: 1 when the answer holds no personal data (of `types`), else 0.
    case pii
    /// Safety: 1 when the question does not look like a prompt injection, else 0.
    case promptInjection = "prompt_injection"
}

/// How `contains` combines several values: `any` passes when at least one value
/// occurs in the answer, `all` only when every value occurs.
public enum ContainsMode: String, Sendable, Codable, CaseIterable {
    case any
    case all
}

/// The built-in rubric of an `llm_judge` evaluator (`custom` uses `prompt`).
public enum JudgeRubric: String, Sendable, Codable, CaseIterable {
    case groundedness
    case relevance
    case coherence
    case fluency
    case similarity
    case custom
}

/// Options of an `llm_judge` evaluator.
public struct JudgeOptions: Sendable, Equatable {
    /// The rubric; `custom` requires `prompt`.
    public var rubric: JudgeRubric
    /// A custom user-message template with `{{question}}`, `{{answer}}`,
    /// `{{context}}` and `{{expected}}` placeholders. When set it replaces the
    /// rubric's built-in user message.
    public var prompt: String?
    /// A judge prompt from the prompt registry (`NAME@ALIAS` or `NAME/VERSION`), rendered with
    /// the `question`, `answer`, `context` and `expected` variables; replaces `prompt`.
    public var promptRef: String?
    /// The gateway route or model name the caller should send the prompt to.
    public var model: String?
    /// Lowest valid score (inclusive), default 1.
    public var minScore: Int
    /// Highest valid score (inclusive), default 5.
    public var maxScore: Int

    public init(rubric: JudgeRubric, prompt: String? = nil, promptRef: String? = nil, model: String? = nil, minScore: Int = 1, maxScore: Int = 5) {
        self.rubric = rubric
        self.prompt = prompt
        self.promptRef = promptRef
        self.model = model
        self.minScore = minScore
        self.maxScore = maxScore
    }
}

/// The kind of an evaluator together with its kind-specific options.
/// Defaults match the decoded defaults.
public enum EvaluatorOptions: Sendable, Equatable {
    /// `normalize` applies SQuAD normalisation; without it the trimmed strings are
    /// compared, case-insensitively when `caseSensitive` is false.
    case exactMatch(normalize: Bool = true, caseSensitive: Bool = true)
    /// Empty `values` means "contains the row's expected answer".
    case contains(values: [String] = [], mode: ContainsMode = .any, caseSensitive: Bool = false)
    case regex(pattern: String, caseSensitive: Bool = true)
    case jsonValid
    case jsonSchema(schema: StrictJSON)
    case tokenF1
    case rougeL
    /// `threshold`, when set, makes `passed = similarity >= threshold`.
    case embeddingSimilarity(threshold: Double? = nil)
    case hitRate(k: Int = 10)
    case mrr(k: Int = 10)
    case ndcg(k: Int = 10)
    /// `max`, when set, makes `passed = latencyMs <= max`.
    case latency(max: Double? = nil)
    /// `max`, when set, makes `passed = cost <= max`.
    case cost(max: Double? = nil)
    case llmJudge(JudgeOptions)
    /// Empty `types`: every kind the gateway's PII scanner knows.
    case pii(types: [PIIKind] = [])
    /// The injection likelihood (0 to 1) at which a question is flagged.
    case promptInjection(threshold: Double = 0.5)

    /// The kind these options belong to.
    public var kind: EvaluatorKind {
        switch self {
        case .exactMatch: .exactMatch
        case .contains: .contains
        case .regex: .regex
        case .jsonValid: .jsonValid
        case .jsonSchema: .jsonSchema
        case .tokenF1: .tokenF1
        case .rougeL: .rougeL
        case .embeddingSimilarity: .embeddingSimilarity
        case .hitRate: .hitRate
        case .mrr: .mrr
        case .ndcg: .ndcg
        case .latency: .latency
        case .cost: .cost
        case .llmJudge: .llmJudge
        case .pii: .pii
        case .promptInjection: .promptInjection
        }
    }
}
