/// The built-in judge instructions, one per rubric.
enum JudgeRubricText {
    /// The criterion paragraph for `rubric` with anchors at `low` and `high`.
    static func criterion(_ rubric: JudgeRubric, low: Int, high: Int) -> String {
        switch rubric {
        case .groundedness:
            """
            Criterion: GROUNDEDNESS. Is every claim in the answer supported by the context? \
            Use only the context, not your own knowledge: a true statement that the context does not support is ungrounded. \
            \(high) = every claim is supported by the context. \
            \(low) = the main claims are unsupported by, or contradict, the context. \
            Use the scores in between in proportion to how much of the answer is unsupported. \
            An answer stating that the context lacks the information is grounded when that is true.
            """
        case .relevance:
            """
            Criterion: RELEVANCE. Does the answer address the question that was asked? \
            \(high) = it directly and completely answers the question. \
            \(low) = it is off-topic or ignores the question. \
            Lower the score for unanswered parts of the question and for padding that does not help answer it. \
            Do not judge factual correctness.
            """
        case .coherence:
            """
            Criterion: COHERENCE. Is the answer logically organised and internally consistent, \
            with each statement following from the previous ones? \
            \(high) = clear structure, no contradictions or non-sequiturs. \
            \(low) = disjointed, self-contradictory or impossible to follow.
            """
        case .fluency:
            """
            Criterion: FLUENCY. Judge only the language of the answer: grammar, spelling, word choice and readability, \
            not its content. \
            \(high) = natural and error-free. \
            \(low) = largely ungrammatical or unreadable.
            """
        case .similarity:
            """
            Criterion: SIMILARITY. Does the answer convey the same meaning as the expected answer? Wording may differ. \
            \(high) = equivalent meaning: all key facts present and nothing contradicts the expected answer. \
            \(low) = unrelated to, or contradicting, the expected answer.
            """
        case .custom:
            "Follow the evaluation instructions in the user message."
        }
    }

    /// The system message: role, criterion and the required reply format.
    static func system(_ rubric: JudgeRubric, low: Int, high: Int) -> String {
        """
        You are an impartial evaluator of answers produced by an AI assistant.

        \(criterion(rubric, low: low, high: high))

        Give an integer score from \(low) (worst) to \(high) (best) and a short reason (one or two sentences). \
        Reply with only this JSON object and nothing else:
        {"score": <integer \(low)-\(high)>, "reason": "<short reason>"}
        """
    }
}
