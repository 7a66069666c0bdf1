import Testing
@testable import LoomGenAI

@Suite struct JudgeParserTests {
    func verdict(_ reply: String, min: Int = 1, max: Int = 5) -> JudgeVerdict? {
        try? JudgeParser.parse(reply, min: min, max: max).get()
    }

    func failure(_ reply: String, min: Int = 1, max: Int = 5) -> JudgeParseError? {
        if case .failure(let error) = JudgeParser.parse(reply, min: min, max: max) { return error }
        return nil
    }

    @Test func jsonShapes() {
        #expect(verdict(#"{"score": 4, "reason": "Mostly supported."}"#) == JudgeVerdict(score: 4, reason: "Mostly supported."))
        #expect(verdict("```json\n{\"score\": 5, \"reason\": \"ok\"}\n```") == JudgeVerdict(score: 5, reason: "ok"))
        #expect(verdict(#"Here is my evaluation: {"score": 3, "reason": "partly {braced}"} Thanks!"#)
            == JudgeVerdict(score: 3, reason: "partly {braced}"))
        #expect(verdict(#"{"Score": "4", "Reason": "string score"}"#) == JudgeVerdict(score: 4, reason: "string score"))
        #expect(verdict(#"{"score": 4.0}"#) == JudgeVerdict(score: 4, reason: ""))
        #expect(verdict(#"{"rating": 2, "explanation": "weak"}"#) == JudgeVerdict(score: 2, reason: "weak"))
        #expect(verdict(#"{"result": {"score": 3, "reason": "nested"}}"#) == JudgeVerdict(score: 3, reason: "nested"))
        // The first object has no score; the labeled text after it does.
        #expect(verdict(#"{"reason": "no score here"} Score: 2"#)?.score == 2)
    }

    @Test func textShapes() {
        #expect(verdict("Score: 4\nReason: The answer is relevant.") == JudgeVerdict(score: 4, reason: "The answer is relevant."))
        #expect(verdict("**Score:** 2\n**Reason:** Off topic.") == JudgeVerdict(score: 2, reason: "Off topic."))
        #expect(verdict("Rating = 5/5 - flawless") == JudgeVerdict(score: 5, reason: "flawless"))
        #expect(verdict("4/5 — because it covers most points") == JudgeVerdict(score: 4, reason: "because it covers most points"))
        #expect(verdict("I'd rate it 3 out of 5. Missing detail.") == JudgeVerdict(score: 3, reason: "Missing detail."))
        #expect(verdict("5") == JudgeVerdict(score: 5, reason: ""))
        #expect(verdict("2. The answer rambles.") == JudgeVerdict(score: 2, reason: "The answer rambles."))
        #expect(verdict("8/10", min: 0, max: 10)?.score == 8)
    }

    @Test func failures() {
        #expect(failure("Score: 7") == .outOfRange(score: 7, min: 1, max: 5))
        #expect(failure("Score: 7")?.description == "judge score 7 is outside [1, 5]")
        #expect(failure("Score: -1") == .outOfRange(score: -1, min: 1, max: 5))
        #expect(failure(#"{"score": 0, "reason": "bad"}"#) == .outOfRange(score: 0, min: 1, max: 5))
        #expect(failure("8/10") == .outOfRange(score: 8, min: 1, max: 5))
        #expect(failure(#"{"score": 4.5}"#) == .notInteger("4.5"))
        #expect(failure("The answer is great.") == .noScore)
        #expect(failure("") == .noScore)
        #expect(failure(#"{"score": null, "reason": "?"}"#) == .noScore)
        #expect(failure(#"{"score": 1e300}"#) == .outOfRange(score: 1_000_000_000, min: 1, max: 5))
        #expect(failure("4", min: 5, max: 1) == .invalidRange(min: 5, max: 1))
        #expect(failure(String(repeating: "{", count: 50_000)) == .noScore)
    }
}

@Suite struct JudgePromptTests {
    let row = EvaluationRow(
        question: "What is the capital of France?",
        answer: "Paris.",
        context: "Paris is the capital of France.",
        expected: "Paris"
    )

    func spec(_ rubric: JudgeRubric, prompt: String? = nil, min: Int = 1, max: Int = 5) -> EvaluatorSpec {
        EvaluatorSpec(options: .llmJudge(JudgeOptions(rubric: rubric, prompt: prompt, minScore: min, maxScore: max)))
    }

    @Test func builtInRubricsAskForJSONScore() throws {
        for rubric in JudgeRubric.allCases where rubric != .custom {
            let messages = try JudgePrompt.messages(for: spec(rubric), row: row)
            #expect(messages.map(\.role) == ["system", "user"])
            #expect(messages[0].content.contains(rubric.rawValue.uppercased()))
            #expect(messages[0].content.contains(#"{"score": <integer 1-5>, "reason": "<short reason>"}"#))
            #expect(messages[1].content.contains("<answer>\nParis.\n</answer>"))
        }
        let grounded = try JudgePrompt.messages(for: spec(.groundedness), row: row)
        #expect(grounded[1].content.contains("<context>\nParis is the capital of France.\n</context>"))
        let similar = try JudgePrompt.messages(for: spec(.similarity), row: row)
        #expect(similar[1].content.contains("<expected_answer>\nParis\n</expected_answer>"))
        let fluent = try JudgePrompt.messages(for: spec(.fluency, min: 0, max: 10), row: row)
        #expect(!fluent[1].content.contains("<question>"))
        #expect(fluent[0].content.contains("from 0 (worst) to 10 (best)"))
    }

    @Test func missingInputsAndWrongKindThrow() {
        var noContext = row
        noContext.context = nil
        #expect(throws: JudgePrompt.Failure(message: "groundedness needs the row's context")) {
            try JudgePrompt.messages(for: spec(.groundedness), row: noContext)
        }
        #expect(throws: JudgePrompt.Failure.self) {
            try JudgePrompt.messages(for: EvaluatorSpec(options: .tokenF1), row: row)
        }
    }

    @Test func customTemplateSubstitution() throws {
        var input = row
        input.context = nil
        let template = "Q={{question}} A={{ answer }} C={{context}} E={{expected}} X={{unknown}} {{open"
        let messages = try JudgePrompt.messages(for: spec(.custom, prompt: template), row: input)
        #expect(messages[1].content == "Q=What is the capital of France? A=Paris. C= E=Paris X={{unknown}} {{open")
        // Inserted values are not expanded again.
        input.answer = "{{question}}"
        #expect(JudgePrompt.render(template: "{{answer}}|{{question}}", row: input) == "{{question}}|What is the capital of France?")
    }

    @Test func judgeResultRecordsScoreOrError() {
        let ok = Evaluator.judgeResult(spec(.relevance), reply: #"{"score": 4, "reason": "on topic"}"#)
        #expect(ok.name == "relevance")
        #expect(ok.score == 4)
        #expect(ok.reason == "on topic")
        #expect(ok.details["normalized"] == 0.75)
        let bad = Evaluator.judgeResult(spec(.relevance), reply: "no idea")
        #expect(bad.score == nil)
        #expect(bad.error == "no score found in judge reply")
        #expect(Evaluator.evaluate(spec(.relevance), row: row).error?.contains("JudgePrompt.messages") == true)
    }
}
