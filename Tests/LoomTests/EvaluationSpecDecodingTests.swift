import Foundation
import Testing
@testable import LoomGenAI

@Suite struct SpecDecodingTests {
    func decode(_ json: String, path: String = "evaluators[0]") throws(EvaluatorSpecError) -> EvaluatorSpec {
        try EvaluatorSpec(json: StrictJSON.parse(json) ?? .null, path: path)
    }

    func error(_ json: String) -> EvaluatorSpecError? {
        do throws(EvaluatorSpecError) {
            _ = try decode(json)
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesOptionsAndDefaults() throws {
        let em = try decode(#"{"kind": "exact_match", "name": "em", "normalize": true}"#)
        #expect(em == EvaluatorSpec(name: "em", options: .exactMatch(normalize: true, caseSensitive: true)))
        #expect(try decode(#"{"kind": "ndcg"}"#) == EvaluatorSpec(name: "ndcg", options: .ndcg(k: 10)))
        #expect(try decode(#"{"kind": "mrr", "k": 5.0}"#).options == .mrr(k: 5))
        #expect(try decode(#"{"kind": "contains", "value": "x", "mode": "all"}"#).options
            == .contains(values: ["x"], mode: .all, caseSensitive: false))
        let judge = try decode(#"{"kind": "llm_judge", "rubric": "groundedness", "model": "judge-route"}"#)
        #expect(judge.name == "groundedness")
        #expect(judge.options == .llmJudge(JudgeOptions(rubric: .groundedness, model: "judge-route")))
        let custom = try decode(#"{"kind": "llm_judge", "prompt": "Rate {{answer}}", "max_score": 10, "min_score": 0}"#)
        #expect(custom.options == .llmJudge(JudgeOptions(rubric: .custom, prompt: "Rate {{answer}}", minScore: 0, maxScore: 10)))
        #expect(custom.name == "llm_judge")
    }

    @Test func invalidRegexIsRejectedWithFieldPath() throws {
        let items = try #require(StrictJSON.parse("""
        [{"kind": "exact_match"}, {"kind": "json_valid"}, {"kind": "regex", "pattern": "(unclosed"}]
        """).flatMap { if case .array(let items) = $0 { items } else { nil } })
        #expect {
            try EvaluatorSpec.decodeList(items)
        } throws: { error in
            let specError = error as? EvaluatorSpecError
            return specError?.field == "evaluators[2].pattern"
                && specError?.message.hasPrefix("invalid regular expression") == true
                && specError?.description.hasPrefix("evaluators[2].pattern: invalid regular expression") == true
        }
    }

    @Test func codableDecodingUsesTheCodingPath() {
        struct Config: Decodable { var evaluators: [EvaluatorSpec] }
        let json = #"{"evaluators": [{"kind": "token_f1"}, {"kind": "regex", "pattern": "["}]}"#
        #expect {
            try JSONDecoder().decode(Config.self, from: Data(json.utf8))
        } throws: { error in
            (error as? EvaluatorSpecError)?.field == "evaluators[1].pattern"
        }
    }

    @Test func errorsNameTheField() {
        #expect(error(#"{"name": "x"}"#)?.field == "evaluators[0].kind")
        #expect(error(#"{"kind": "bleu"}"#)?.description.hasPrefix("evaluators[0].kind: unknown kind 'bleu'") == true)
        #expect(error(#"{"kind": "exact_match", "normalise": true}"#)
            == EvaluatorSpecError(field: "evaluators[0].normalise", message: "unknown option for exact_match"))
        #expect(error(#"{"kind": "exact_match", "normalize": "yes"}"#)
            == EvaluatorSpecError(field: "evaluators[0].normalize", message: "expected a boolean, got string"))
        #expect(error(#"{"kind": "hit_rate", "k": "5"}"#)?.description == "evaluators[0].k: expected a number, got string")
        #expect(error(#"{"kind": "hit_rate", "k": 2.5}"#)?.description == "evaluators[0].k: expected an integer, got 2.5")
        #expect(error(#"{"kind": "ndcg", "k": 0}"#)?.description == "evaluators[0].k: must be at least 1, got 0")
        #expect(error(#"{"kind": "regex"}"#)?.field == "evaluators[0].pattern")
        #expect(error(#"{"kind": "contains", "value": "a", "values": ["b"]}"#)?.field == "evaluators[0].values")
        #expect(error(#"{"kind": "contains", "values": ["a", 3]}"#)?.field == "evaluators[0].values[1]")
        #expect(error(#"{"kind": "contains", "mode": "some"}"#)?.field == "evaluators[0].mode")
        #expect(error(#"{"kind": "llm_judge", "rubric": "custom"}"#)?.field == "evaluators[0].prompt")
        #expect(error(#"{"kind": "llm_judge", "rubric": "vibes"}"#)?.field == "evaluators[0].rubric")
        #expect(error(#"{"kind": "llm_judge"}"#)?.field == "evaluators[0].rubric")
        #expect(error(#"{"kind": "llm_judge", "rubric": "fluency", "min_score": 5, "max_score": 5}"#)?.field
            == "evaluators[0].max_score")
        #expect(error(#"{"kind": "latency", "max": true}"#)?.field == "evaluators[0].max")
        #expect(error(#"{"kind": "json_valid", "name": ""}"#)?.field == "evaluators[0].name")
        #expect(error(#"[1]"#)?.description == "evaluators[0]: expected an object, got array")
    }

    @Test func schemaIsValidatedAtDecodeTime() {
        #expect(error(#"{"kind": "json_schema"}"#)?.field == "evaluators[0].schema")
        #expect(error(#"{"kind": "json_schema", "schema": 3}"#)?.field == "evaluators[0].schema")
        #expect(error(#"{"kind": "json_schema", "schema": {"properties": {"name": {"pattern": "("}}}}"#)?.field
            == "evaluators[0].schema.properties.name.pattern")
        #expect(error(#"{"kind": "json_schema", "schema": {"type": "float"}}"#)?.description
            == #"evaluators[0].schema.type: unknown type "float""#)
        #expect(error(#"{"kind": "json_schema", "schema": {"items": {"minimum": "0"}}}"#)?.field
            == "evaluators[0].schema.items.minimum")
        #expect(error(#"{"kind": "json_schema", "schema": {"anyOf": []}}"#)?.field == "evaluators[0].schema.anyOf")
        #expect(error(#"{"kind": "json_schema", "schema": {"oneOf": [true, {"required": "a"}]}}"#)?.field
            == "evaluators[0].schema.oneOf[1].required")
    }

    @Test func duplicateNamesAreRejected() {
        let items: [StrictJSON] = [
            .object(["kind": .string("token_f1")]),
            .object(["kind": .string("rouge_l"), "name": .string("token_f1")]),
        ]
        #expect(throws: EvaluatorSpecError(field: "evaluators[1].name", message: "duplicate evaluator name 'token_f1'")) {
            try EvaluatorSpec.decodeList(items)
        }
    }

    @Test func foundationDictionariesKeepBooleansAndNumbersApart() throws {
        let object = try JSONSerialization.jsonObject(with: Data(#"{"kind": "exact_match", "normalize": false, "case_sensitive": true}"#.utf8))
        let dictionary = try #require(object as? [String: Any])
        #expect(try EvaluatorSpec(dictionary: dictionary).options == .exactMatch(normalize: false, caseSensitive: true))
        // A YAML-style dictionary with native Swift values.
        let yaml: [String: Any] = ["kind": "hit_rate", "k": 3, "name": "hits"]
        #expect(try EvaluatorSpec(dictionary: yaml) == EvaluatorSpec(name: "hits", options: .hitRate(k: 3)))
        // A number where a boolean is expected is still an error.
        let numeric: [String: Any] = ["kind": "exact_match", "normalize": 1]
        #expect(throws: EvaluatorSpecError(field: "x.normalize", message: "expected a boolean, got number")) {
            try EvaluatorSpec(dictionary: numeric, path: "x")
        }
        #expect(throws: EvaluatorSpecError.self) {
            try EvaluatorSpec.decodeList(any: [["kind": "regex", "pattern": "a"], ["kind": Date()]])
        }
    }

    @Test func judgePromptsFromTheRegistry() throws {
        let spec = try EvaluatorSpec(json: StrictJSON.parse(#"{"kind": "llm_judge", "name": "tone", "prompt_ref": "judge-tone@production", "model": "m"}"#)!)
        guard case .llmJudge(let judge) = spec.options else { Issue.record("not a judge"); return }
        #expect(judge.rubric == .custom && judge.promptRef == "judge-tone@production" && judge.prompt == nil)
        #expect(throws: EvaluatorSpecError.self) {
            try EvaluatorSpec(json: StrictJSON.parse(#"{"kind": "llm_judge", "prompt": "x", "prompt_ref": "a@b", "model": "m"}"#)!)
        }
        #expect(throws: EvaluatorSpecError.self) {
            try EvaluatorSpec(json: StrictJSON.parse(#"{"kind": "llm_judge", "prompt_ref": "", "model": "m"}"#)!)
        }
    }

    @Test func everyKindRoundTripsThroughJSON() throws {
        let specs: [EvaluatorSpec] = [
            EvaluatorSpec(options: .exactMatch(normalize: false, caseSensitive: false)),
            EvaluatorSpec(options: .contains(values: ["a", "b"], mode: .all, caseSensitive: true)),
            EvaluatorSpec(name: "contains_expected", options: .contains()),
            EvaluatorSpec(options: .regex(pattern: #"\d+"#, caseSensitive: false)),
            EvaluatorSpec(options: .jsonValid),
            EvaluatorSpec(options: .jsonSchema(schema: .object(["type": .string("object")]))),
            EvaluatorSpec(options: .tokenF1),
            EvaluatorSpec(options: .rougeL),
            EvaluatorSpec(options: .embeddingSimilarity(threshold: 0.8)),
            EvaluatorSpec(options: .hitRate(k: 3)),
            EvaluatorSpec(options: .mrr()),
            EvaluatorSpec(options: .ndcg(k: 5)),
            EvaluatorSpec(options: .latency(max: 1500)),
            EvaluatorSpec(options: .cost()),
            EvaluatorSpec(options: .llmJudge(JudgeOptions(rubric: .similarity, model: "m", minScore: 0, maxScore: 10))),
            EvaluatorSpec(name: "tone", options: .llmJudge(JudgeOptions(rubric: .custom, prompt: "{{answer}}"))),
            EvaluatorSpec(name: "registry_judge", options: .llmJudge(JudgeOptions(rubric: .custom, promptRef: "judge-tone@production", model: "m"))),
            EvaluatorSpec(options: .pii(types: [.email, .iban])),
            EvaluatorSpec(name: "all_pii", options: .pii()),
            EvaluatorSpec(options: .promptInjection(threshold: 0.7)),
        ]
        let data = try JSONEncoder().encode(specs)
        let decoded = try JSONDecoder().decode([EvaluatorSpec].self, from: data)
        #expect(decoded == specs)
        #expect(Set(specs.map(\.kind)) == Set(EvaluatorKind.allCases))
    }
}
