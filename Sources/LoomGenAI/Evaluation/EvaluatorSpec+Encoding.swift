import Foundation

extension EvaluatorSpec: Codable {
    /// Decodes through `init(json:path:)`; the path comes from the decoder's
    /// coding path, so decoding `{"evaluators": [...]}` reports
    /// `evaluators[2].pattern: ...` as an `EvaluatorSpecError`.
    public init(from decoder: any Decoder) throws {
        let json = try StrictJSON(from: decoder)
        try self.init(json: json, path: FieldPath.render(decoder.codingPath))
    }

    public func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }

    /// The flat JSON object form, with every option written out explicitly;
    /// `EvaluatorSpec(json: spec.json)` round-trips.
    public var json: StrictJSON {
        var object: [String: StrictJSON] = [
            "kind": .string(kind.rawValue),
            "name": .string(name),
        ]
        for (key, value) in optionFields {
            object[key] = value
        }
        return .object(object)
    }

    private var optionFields: [String: StrictJSON] {
        switch options {
        case .exactMatch(let normalize, let caseSensitive):
            return ["normalize": .bool(normalize), "case_sensitive": .bool(caseSensitive)]
        case .contains(let values, let mode, let caseSensitive):
            var fields: [String: StrictJSON] = ["mode": .string(mode.rawValue), "case_sensitive": .bool(caseSensitive)]
            if !values.isEmpty { fields["values"] = .array(values.map(StrictJSON.string)) }
            return fields
        case .regex(let pattern, let caseSensitive):
            return ["pattern": .string(pattern), "case_sensitive": .bool(caseSensitive)]
        case .jsonValid, .tokenF1, .rougeL:
            return [:]
        case .jsonSchema(let schema):
            return ["schema": schema]
        case .embeddingSimilarity(let threshold):
            return threshold.map { ["threshold": .number($0)] } ?? [:]
        case .hitRate(let k), .mrr(let k), .ndcg(let k):
            return ["k": .number(Double(k))]
        case .latency(let max), .cost(let max):
            return max.map { ["max": .number($0)] } ?? [:]
        case .pii(let types):
            return types.isEmpty ? [:] : ["types": .array(types.map { .string($0.rawValue) })]
        case .promptInjection(let threshold):
            return ["threshold": .number(threshold)]
        case .llmJudge(let judge):
            var fields: [String: StrictJSON] = [
                "rubric": .string(judge.rubric.rawValue),
                "min_score": .number(Double(judge.minScore)),
                "max_score": .number(Double(judge.maxScore)),
            ]
            if let prompt = judge.prompt { fields["prompt"] = .string(prompt) }
            if let promptRef = judge.promptRef { fields["prompt_ref"] = .string(promptRef) }
            if let model = judge.model { fields["model"] = .string(model) }
            return fields
        }
    }
}
