import Foundation

/// Builds the chat messages for an `llm_judge` evaluator (phase 1 of 2; the
/// reply is scored with `JudgeParser` / `Evaluator.judgeResult`).
public enum JudgePrompt: Sendable {
    /// Why no prompt can be built for a row.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A system message (rubric criterion, score range, JSON reply format) and a
    /// user message. For built-in rubrics the user message lists the inputs the
    /// rubric needs in `<question>`, `<context>`, `<expected_answer>`,
    /// `<answer>` sections; `groundedness` requires `context` and `similarity`
    /// requires `expected`. When the spec has a `prompt`, the user message is
    /// that template rendered with `render(template:row:)` instead.
    public static func messages(for spec: EvaluatorSpec, row: EvaluationRow) throws(Failure) -> [ChatMessage] {
        guard case .llmJudge(let judge) = spec.options else {
            throw Failure(message: "evaluator '\(spec.name)' is \(spec.kind.rawValue), not llm_judge")
        }
        guard judge.minScore < judge.maxScore else {
            throw Failure(message: "min_score must be less than max_score")
        }
        let system = ChatMessage(
            role: "system",
            content: JudgeRubricText.system(judge.rubric, low: judge.minScore, high: judge.maxScore)
        )
        if let template = judge.prompt {
            return [system, ChatMessage(role: "user", content: render(template: template, row: row))]
        }
        return [system, ChatMessage(role: "user", content: try userContent(judge.rubric, row: row))]
    }

    private static func userContent(_ rubric: JudgeRubric, row: EvaluationRow) throws(Failure) -> String {
        var sections: [(String, String)] = [("question", row.question)]
        switch rubric {
        case .groundedness:
            guard let context = row.context else { throw Failure(message: "groundedness needs the row's context") }
            sections.append(("context", context))
        case .similarity:
            guard let expected = row.expected else { throw Failure(message: "similarity needs the row's expected answer") }
            sections.append(("expected_answer", expected))
        case .fluency:
            sections = []
        case .relevance, .coherence:
            break
        case .custom:
            throw Failure(message: "custom rubric needs a prompt")
        }
        sections.append(("answer", row.answer))
        let body = sections.map { "<\($0.0)>\n\($0.1)\n</\($0.0)>" }.joined(separator: "\n\n")
        return body + "\n\nEvaluate the answer and reply with the JSON object."
    }

    /// Replaces `{{question}}`, `{{answer}}`, `{{context}}` and `{{expected}}`
    /// (spaces inside the braces allowed) with the row's values in one pass;
    /// missing optional values become the empty string, unknown placeholders
    /// are left unchanged, and inserted values are never re-expanded.
    public static func render(template: String, row: EvaluationRow) -> String {
        var output = ""
        var rest = template[...]
        while let open = rest.range(of: "{{") {
            output += rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.range(of: "}}") else {
                rest = rest[open.lowerBound...]
                break
            }
            let name = afterOpen[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if let value = placeholder(name, row: row) {
                output += value
            } else {
                output += rest[open.lowerBound..<close.upperBound]
            }
            rest = afterOpen[close.upperBound...]
        }
        return output + rest
    }

    private static func placeholder(_ name: String, row: EvaluationRow) -> String? {
        switch name {
        case "question": row.question
        case "answer": row.answer
        case "context": row.context ?? ""
        case "expected": row.expected ?? ""
        default: nil
        }
    }
}
