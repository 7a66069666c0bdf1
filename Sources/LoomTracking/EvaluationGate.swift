import Foundation

/// What a pipeline's evaluation gate asks of the server (docs/evaluation.md, "Gates in
/// pipelines"): an evaluation spec, its flow (a stored flow's `NAME[@VERSION]` or its YAML)
/// and its rows (a registered dataset or a JSON Lines file).
public struct EvaluationGateRequest: Sendable {
    public enum Rows: Sendable {
        case registered(String)
        case file(String)
    }

    public var specText: String
    public var flow: String
    public var rows: Rows
    public var failUnder: String?
    public var workspace: String

    public init(specText: String, flow: String, rows: Rows, failUnder: String?, workspace: String) {
        self.specText = specText
        self.flow = flow
        self.rows = rows
        self.failUnder = failUnder
        self.workspace = workspace
    }

    /// The spec's `flow` and `dataset` (read by whoever runs the evaluation; nil when absent).
    static func specFields(_ text: String) -> (flow: String?, dataset: String?) {
        var flow: String?
        var dataset: String?
        for line in text.split(separator: "\n") where !line.hasPrefix(" ") && !line.hasPrefix("\t") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if parts[0] == "flow", !value.isEmpty { flow = value }
            if parts[0] == "dataset", !value.isEmpty { dataset = value }
        }
        return (flow, dataset)
    }
}

/// What the evaluation found, per variant: means of each metric, and its gates' outcomes.
public struct EvaluationGateResult: Sendable {
    public struct Variant: Sendable {
        public var name: String
        public var means: [String: Double]
        public var passes: [String]
        public var failures: [String]

        public init(name: String, means: [String: Double], passes: [String], failures: [String]) {
            self.name = name
            self.means = means
            self.passes = passes
            self.failures = failures
        }
    }

    public var runID: String
    public var variants: [Variant]

    public init(runID: String, variants: [Variant]) {
        self.runID = runID
        self.variants = variants
    }
}

/// Runs a gate's evaluation as a stored run (the server's evaluation service).
public protocol EvaluationGateRunner: Sendable {
    func runEvaluation(_ request: EvaluationGateRequest) async throws -> EvaluationGateResult
}
