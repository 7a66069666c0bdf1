import Foundation
import LoomCore
import LoomData
import LoomGenAI
import LoomTracking

/// Evaluation runs as the API and pipelines' gates start them: the flow (stored or YAML) and
/// the rows (given, a registered dataset version, or a JSON Lines file a pipeline names).
extension GatewayService: EvaluationGateRunner {
    /// A stored flow's text and `NAME@VERSION` when `flow` names one (no line break, no colon),
    /// else `flow` itself as YAML.
    func flowText(_ flow: String, workspace: String) async throws -> (text: String, reference: String?) {
        guard !flow.contains("\n"), !flow.contains(":") else { return (flow, nil) }
        let (found, _) = try await flowLibrary.resolve(flow, workspace: workspace)
        return (found.specText, "\(found.name)@\(found.version)")
    }

    /// The rows of a registered dataset (`NAME` or `NAME@VERSION`; never a path) and the version read.
    func datasetRows(_ reference: String, workspace: String) async throws -> (rows: [[String: JSONValue]], label: String) {
        let parts = reference.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard (try? Validate.datasetName(parts[0])) != nil else {
            throw LoomError.invalidParameter("dataset: '\(reference)' is not a registered dataset's NAME or NAME@VERSION")
        }
        var number: Int64?
        if parts.count == 2 {
            guard let v = Int64(parts[1]), v > 0 else { throw LoomError.invalidParameter("dataset: invalid version in '\(reference)': expected NAME@<number>") }
            number = v
        }
        let (files, _, version) = try await tracking.files(of: .version(name: parts[0], version: number), workspace: workspace)
        let rows = try await DataWork.run { try EvaluationDataset.rows(files) }
        return (rows, "\(parts[0])@\(version?.version ?? number ?? 0)")
    }

    public func runEvaluation(_ request: EvaluationGateRequest) async throws -> EvaluationGateResult {
        let (flow, reference) = try await flowText(request.flow, workspace: request.workspace)
        // A tool node calls any URL it names: only an administrator runs such a flow (loom eval run), not a pipeline anyone may submit.
        if try FlowSpec.parse(yaml: flow).nodes.contains(where: { $0.kind == .tool || $0.body?.node.kind == .tool }) {
            throw LoomError.permissionDenied("a pipeline's evaluation gate does not run flows with tool nodes; run that evaluation with loom eval run (an administrator's)")
        }
        let rows: [[String: JSONValue]]
        let label: String
        switch request.rows {
        case .registered(let name):
            (rows, label) = try await datasetRows(name, workspace: request.workspace)
        case .file(let path):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LoomError.invalidParameter("dataset: no file at \(path)") }
            rows = try EvaluationDataset.parse(jsonLines: text)
            label = "inline"
        }
        let run = try await evaluationRuns.create(
            specText: request.specText, flowText: flow, flowRef: reference, rows: rows, dataset: label, failUnder: request.failUnder,
            workspace: request.workspace)
        let report = try await evaluationRuns.execute(id: run.id, workspace: request.workspace, created: true)
        return EvaluationGateResult(runID: run.id, variants: report.variants.map { v in
            func describe(_ g: GateOutcome) -> String {
                let metric = g.statistic == .mean || g.metric == "failed_rows" || g.metric == "rows_run" ? g.metric : "\(g.metric).\(g.statistic.rawValue)"
                return "\(metric) \(g.actual.map { String(format: "%.4g", $0) } ?? "not computed") \(g.passed ? "" : "needs ")\(g.op.rawValue) \(String(format: "%.4g", g.threshold))"
                    + (g.reason.map { " (\($0))" } ?? "")
            }
            return EvaluationGateResult.Variant(
                name: v.name, means: v.aggregates.compactMapValues(\.mean), passes: v.gates.filter(\.passed).map(describe),
                failures: v.gates.filter { !$0.passed }.map(describe))
        })
    }
}
