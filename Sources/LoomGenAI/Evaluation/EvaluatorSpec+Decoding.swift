import LoomCore
import Foundation

extension EvaluatorSpec {
    /// Decodes and validates a spec from a JSON object such as
    /// `{"kind": "exact_match", "name": "em", "normalize": true}`.
    ///
    /// Unknown keys are rejected so typos surface. Every error's `field` is
    /// prefixed with `path` (pass e.g. `"evaluators[2]"`).
    public init(json: StrictJSON, path: String = "") throws(EvaluatorSpecError) {
        do throws(EvaluatorSpecError) {
            guard case .object(let object) = json else {
                throw EvaluatorSpecError(field: "", message: "expected an object, got \(json.typeName)")
            }
            var reader = OptionReader(object: object)
            let kind = try reader.kind()
            let options = try reader.options(for: kind)
            let name = try reader.string("name")
            try reader.rejectUnknownKeys(kind: kind)
            self.init(name: name, options: options)
            try validate()
        } catch {
            throw error.prefixed(by: path)
        }
    }

    /// Decodes a spec from a Foundation/YAML-style dictionary (`[String: Any]`).
    public init(dictionary: [String: Any], path: String = "") throws(EvaluatorSpecError) {
        guard let json = StrictJSON(any: dictionary) else {
            throw EvaluatorSpecError(field: path, message: "contains a value that is not JSON-compatible")
        }
        try self.init(json: json, path: path)
    }

    /// Decodes a list of specs; element `i` reports errors under `<path>[i]`.
    /// Names must be unique (`<path>[i].name: duplicate evaluator name 'x'`).
    public static func decodeList(_ items: [StrictJSON], path: String = "evaluators") throws(EvaluatorSpecError) -> [EvaluatorSpec] {
        var specs: [EvaluatorSpec] = []
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            let spec = try EvaluatorSpec(json: item, path: itemPath)
            if !seen.insert(spec.name).inserted {
                throw EvaluatorSpecError(field: FieldPath.join(itemPath, "name"), message: "duplicate evaluator name '\(spec.name)'")
            }
            specs.append(spec)
        }
        return specs
    }

    /// `decodeList` for Foundation/YAML-style arrays (`[Any]`).
    public static func decodeList(any items: [Any], path: String = "evaluators") throws(EvaluatorSpecError) -> [EvaluatorSpec] {
        var values: [StrictJSON] = []
        for (index, item) in items.enumerated() {
            guard let value = StrictJSON(any: item) else {
                throw EvaluatorSpecError(field: "\(path)[\(index)]", message: "contains a value that is not JSON-compatible")
            }
            values.append(value)
        }
        return try decodeList(values, path: path)
    }
}

/// Reads typed options out of a spec object, remembering which keys were used.
private struct OptionReader {
    let object: [String: StrictJSON]
    private var used: Set<String> = ["kind", "name"]

    init(object: [String: StrictJSON]) {
        self.object = object
    }

    private static let kindList = EvaluatorKind.allCases.map(\.rawValue).joined(separator: ", ")

    func kind() throws(EvaluatorSpecError) -> EvaluatorKind {
        guard let value = object["kind"] else {
            throw EvaluatorSpecError(field: "kind", message: "missing; expected one of \(Self.kindList)")
        }
        guard case .string(let raw) = value else {
            throw EvaluatorSpecError(field: "kind", message: "expected a string, got \(value.typeName)")
        }
        guard let kind = EvaluatorKind(rawValue: raw) else {
            throw EvaluatorSpecError(field: "kind", message: "unknown kind '\(raw)'; expected one of \(Self.kindList)")
        }
        return kind
    }

    mutating func options(for kind: EvaluatorKind) throws(EvaluatorSpecError) -> EvaluatorOptions {
        switch kind {
        case .exactMatch:
            return .exactMatch(normalize: try bool("normalize") ?? true, caseSensitive: try bool("case_sensitive") ?? true)
        case .contains:
            return .contains(values: try containsValues(), mode: try mode(), caseSensitive: try bool("case_sensitive") ?? false)
        case .regex:
            guard let pattern = try string("pattern") else {
                throw EvaluatorSpecError(field: "pattern", message: "missing")
            }
            return .regex(pattern: pattern, caseSensitive: try bool("case_sensitive") ?? true)
        case .jsonValid: return .jsonValid
        case .jsonSchema:
            guard let schema = raw("schema") else { throw EvaluatorSpecError(field: "schema", message: "missing") }
            return .jsonSchema(schema: schema)
        case .tokenF1: return .tokenF1
        case .rougeL: return .rougeL
        case .embeddingSimilarity: return .embeddingSimilarity(threshold: try number("threshold"))
        case .hitRate: return .hitRate(k: try integer("k") ?? 10)
        case .mrr: return .mrr(k: try integer("k") ?? 10)
        case .ndcg: return .ndcg(k: try integer("k") ?? 10)
        case .latency: return .latency(max: try number("max"))
        case .cost: return .cost(max: try number("max"))
        case .llmJudge: return .llmJudge(try judgeOptions())
        case .pii:
            var types: [PIIKind] = []
            if let given = raw("types") {
                guard case .array(let items) = given else { throw EvaluatorSpecError(field: "types", message: "expected a list of PII types") }
                for (i, item) in items.enumerated() {
                    guard case .string(let t) = item, let kind = PIIKind(rawValue: t) else {
                        throw EvaluatorSpecError(
                            field: "types[\(i)]", message: "unknown PII type; expected one of \(PIIKind.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    types.append(kind)
                }
            }
            return .pii(types: types)
        case .promptInjection:
            let threshold = try number("threshold") ?? 0.5
            guard threshold > 0, threshold <= 1 else { throw EvaluatorSpecError(field: "threshold", message: "must be above 0 and at most 1") }
            return .promptInjection(threshold: threshold)
        }
    }

    func rejectUnknownKeys(kind: EvaluatorKind) throws(EvaluatorSpecError) {
        if let unknown = object.keys.sorted().first(where: { !used.contains($0) }) {
            throw EvaluatorSpecError(field: unknown, message: "unknown option for \(kind.rawValue)")
        }
    }

    // MARK: Typed accessors

    mutating func raw(_ key: String) -> StrictJSON? {
        used.insert(key)
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    mutating func string(_ key: String) throws(EvaluatorSpecError) -> String? {
        guard let value = raw(key) else { return nil }
        guard case .string(let string) = value else {
            throw EvaluatorSpecError(field: key, message: "expected a string, got \(value.typeName)")
        }
        return string
    }

    mutating func bool(_ key: String) throws(EvaluatorSpecError) -> Bool? {
        guard let value = raw(key) else { return nil }
        guard case .bool(let bool) = value else {
            throw EvaluatorSpecError(field: key, message: "expected a boolean, got \(value.typeName)")
        }
        return bool
    }

    mutating func number(_ key: String) throws(EvaluatorSpecError) -> Double? {
        guard let value = raw(key) else { return nil }
        guard case .number(let number) = value else {
            throw EvaluatorSpecError(field: key, message: "expected a number, got \(value.typeName)")
        }
        return number
    }

    mutating func integer(_ key: String) throws(EvaluatorSpecError) -> Int? {
        guard let number = try number(key) else { return nil }
        guard number.rounded() == number, abs(number) <= 1_000_000_000 else {
            throw EvaluatorSpecError(field: key, message: "expected an integer, got \(NumberFormatting.format(number))")
        }
        return Int(number)
    }

    // MARK: Kind-specific groups

    private mutating func containsValues() throws(EvaluatorSpecError) -> [String] {
        let single = try string("value")
        let list = raw("values")
        switch (single, list) {
        case (.some, .some):
            throw EvaluatorSpecError(field: "values", message: "use either value or values, not both")
        case (.some(let value), .none):
            return [value]
        case (.none, .some(.string(let value))):
            return [value]
        case (.none, .some(.array(let items))):
            var values: [String] = []
            for (index, item) in items.enumerated() {
                guard case .string(let value) = item else {
                    throw EvaluatorSpecError(field: "values[\(index)]", message: "expected a string, got \(item.typeName)")
                }
                values.append(value)
            }
            if values.isEmpty { throw EvaluatorSpecError(field: "values", message: "must not be empty") }
            return values
        case (.none, .some(let other)):
            throw EvaluatorSpecError(field: "values", message: "expected a list of strings, got \(other.typeName)")
        case (.none, .none):
            return []
        }
    }

    private mutating func mode() throws(EvaluatorSpecError) -> ContainsMode {
        guard let raw = try string("mode") else { return .any }
        guard let mode = ContainsMode(rawValue: raw) else {
            throw EvaluatorSpecError(field: "mode", message: "unknown mode '\(raw)'; expected any or all")
        }
        return mode
    }

    private mutating func judgeOptions() throws(EvaluatorSpecError) -> JudgeOptions {
        let prompt = try string("prompt")
        let promptRef = try string("prompt_ref")
        if prompt != nil, promptRef != nil {
            throw EvaluatorSpecError(field: "prompt_ref", message: "give a prompt text or a registry prompt (prompt_ref), not both")
        }
        if let promptRef {
            do { _ = try PromptReference(parsing: promptRef) } catch { throw EvaluatorSpecError(field: "prompt_ref", message: error.message) }
        }
        let rubric: JudgeRubric
        if let raw = try string("rubric") {
            guard let parsed = JudgeRubric(rawValue: raw) else {
                let list = JudgeRubric.allCases.map(\.rawValue).joined(separator: ", ")
                throw EvaluatorSpecError(field: "rubric", message: "unknown rubric '\(raw)'; expected one of \(list)")
            }
            rubric = parsed
        } else if prompt != nil || promptRef != nil {
            rubric = .custom
        } else {
            throw EvaluatorSpecError(field: "rubric", message: "missing (or give a custom prompt)")
        }
        return JudgeOptions(
            rubric: rubric,
            prompt: prompt,
            promptRef: promptRef,
            model: try string("model"),
            minScore: try integer("min_score") ?? 1,
            maxScore: try integer("max_score") ?? 5
        )
    }
}
