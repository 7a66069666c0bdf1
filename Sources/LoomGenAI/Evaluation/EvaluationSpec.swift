import Foundation
import LoomCore
import Yams

/// An evaluation as written in YAML (`kind: evaluation`, docs/evaluation.md): a flow run over
/// a dataset's rows (each variant in turn), its answers scored by evaluators, and gates on
/// the scores.
public struct EvaluationSpec: Sendable {
    public var name: String
    /// The dataset file (JSON Lines), relative to the spec: read by the CLI.
    public var dataset: String?
    /// The flow file, relative to the spec: read by the CLI.
    public var flow: String?
    /// Flow input → the row's field that feeds it (default: each input from the field of its name).
    public var inputs: [String: String]
    /// The flow outputs that hold the answer, the context it used, and the sources it retrieved.
    public var answer: String
    public var context: String?
    public var retrieved: String?
    /// Variant name → the flow's node variants it picks (`base: {}` runs the flow as written).
    public var variants: [(name: String, nodes: [String: String])]
    public var evaluators: [EvaluatorSpec]
    /// Rows run at once.
    public var concurrency: Int
    /// The embeddings route for `embedding_similarity`.
    public var embeddingsRoute: String?
    /// `metric=threshold,...` gates the run must pass.
    public var failUnder: Gate?

    public static func parse(yaml text: String) throws(LoomError) -> EvaluationSpec {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw .invalidParameter("The evaluation spec is not YAML: \(error)")
        }
        guard let top = loaded as? [String: Any] else { throw .invalidParameter("The evaluation spec must be a mapping with kind: evaluation") }
        let known: Set<String> = [
            "kind", "name", "description", "dataset", "flow", "inputs", "answer", "context", "retrieved", "variants", "evaluators", "concurrency",
            "embeddings_route", "fail_under",
        ]
        if let unknown = top.keys.sorted().first(where: { !known.contains($0) }) { throw .invalidParameter("\(unknown): not a key of an evaluation spec") }
        guard top["kind"] as? String == "evaluation" else { throw .invalidParameter("kind: must be evaluation") }
        guard let name = top["name"] as? String, !name.isEmpty else { throw .invalidParameter("name: is required") }
        func strings(_ key: String) throws(LoomError) -> [String: String] {
            guard let raw = top[key] else { return [:] }
            guard let map = raw as? [String: Any], map.values.allSatisfy({ $0 is String }) else { throw .invalidParameter("\(key): must map names to names") }
            return map.mapValues { $0 as! String }
        }
        var variants: [(String, [String: String])] = []
        if let raw = top["variants"] {
            guard let map = raw as? [String: Any] else { throw .invalidParameter("variants: must map variant names to {node: variant}") }
            for (v, nodes) in map.sorted(by: { $0.key < $1.key }) {
                let n: [String: Any]
                if let d = nodes as? [String: Any] { n = d } else if nodes is NSNull { n = [:] } else { n = ["": 0] }
                guard n.values.allSatisfy({ $0 is String }) else {
                    throw .invalidParameter("variants.\(v): must map node names to their variant ({} for the flow as written)")
                }
                variants.append((v, n.mapValues { $0 as! String }))
            }
        }
        if variants.isEmpty { variants = [("base", [:])] }
        guard let list = top["evaluators"] as? [Any], !list.isEmpty else { throw .invalidParameter("evaluators: must list at least one evaluator") }
        let evaluators: [EvaluatorSpec]
        do {
            evaluators = try EvaluatorSpec.decodeList(any: list, path: "evaluators")
        } catch {
            throw .invalidParameter(error.description)
        }
        var concurrency = 4
        if let c = top["concurrency"] {
            guard let i = c as? Int, (1...256).contains(i) else { throw .invalidParameter("concurrency: must be a whole number from 1 to 256") }
            concurrency = i
        }
        var gate: Gate?
        if let g = top["fail_under"] {
            guard let s = g as? String else { throw .invalidParameter("fail_under: must be text such as groundedness=4.0,hit_rate=0.8") }
            do { gate = try Gate(parsing: s) } catch { throw .invalidParameter("fail_under: \(error.message)") }
        }
        if evaluators.contains(where: { $0.kind == .embeddingSimilarity }), top["embeddings_route"] as? String == nil {
            throw .invalidParameter("embeddings_route: embedding_similarity needs the gateway's embeddings route")
        }
        for (i, e) in evaluators.enumerated() {
            if case .llmJudge(let j) = e.options, (j.model ?? "").isEmpty {
                throw .invalidParameter("evaluators[\(i)].model: an llm_judge needs the gateway route that judges")
            }
        }
        return EvaluationSpec(
            name: name, dataset: top["dataset"] as? String, flow: top["flow"] as? String, inputs: try strings("inputs"),
            answer: top["answer"] as? String ?? "answer", context: top["context"] as? String, retrieved: top["retrieved"] as? String, variants: variants,
            evaluators: evaluators, concurrency: concurrency, embeddingsRoute: top["embeddings_route"] as? String, failUnder: gate)
    }
}
