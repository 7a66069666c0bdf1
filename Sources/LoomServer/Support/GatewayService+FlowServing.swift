import Foundation
import LoomCore
import LoomGenAI
import LoomServing
import NIOCore
import Synchronization

/// Flows served by endpoints (docs/flows.md, "Serving a flow"): a `flow` deployment pins a
/// stored flow's version; each request's JSON object is the flow's inputs (or `{inputs,
/// variants}`), and the answer its outputs with the run's trace id. A node that fails is a
/// 502 naming it; inputs the flow does not take are a 400.
extension GatewayService: FlowInvoker {
    public func pin(flow reference: String, workspace: String) async throws -> String {
        let (found, _) = try await flowLibrary.resolve(reference, workspace: workspace)
        return "\(found.name)@\(found.version)"
    }

    public func invoke(flow: String, workspace: String, request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        let spec = try await servedFlow(flow, workspace: workspace)
        guard let body = try? JSONValue.parse(Array(request.body.readableBytesView)), let object = body.objectValue else {
            throw LoomError.badRequest("The request must be a JSON object: the flow's inputs, or {\"inputs\": {...}, \"variants\": {...}}")
        }
        var inputs = object
        var variants: [String: String] = [:]
        if case .object(let given)? = object["inputs"], Set(object.keys).isSubset(of: ["inputs", "variants"]) {
            inputs = given
            for (node, value) in object["variants"]?.objectValue ?? [:] {
                guard let v = value.stringValue else { throw LoomError.invalidParameter("variants.\(node) must be a variant's name") }
                variants[node] = v
            }
        }
        let (given, chosen) = (inputs, variants)
        let run = try await withThrowingTaskGroup(of: FlowRun?.self) { group in
            group.addTask { try await self.flows.run(spec, inputs: given, variants: chosen, workspace: workspace) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let run = first else {
                throw LoomError(.timedOut, "Flow \(flow) did not answer within \(timeout)")
            }
            return run
        }
        var answer: [String: JSONValue] = ["flow": .string(flow), "trace_id": .string(run.traceId), "status": .string(run.status)]
        if run.status == "succeeded" {
            answer["outputs"] = .object(run.outputs)
            return ServingAnswer(status: 200, body: ByteBuffer(bytes: JSONValue.object(answer).jsonBytes))
        }
        answer["error"] = .string(run.error ?? "the flow failed")
        return ServingAnswer(status: 502, body: ByteBuffer(bytes: JSONValue.object(answer).jsonBytes))
    }

    /// A pinned flow's spec (versions are immutable: parsed once).
    func servedFlow(_ reference: String, workspace: String) async throws -> FlowSpec {
        let key = workspace + "\u{1F}" + reference
        if let spec = servedFlows.withLock({ $0[key] }) { return spec }
        let (_, spec) = try await flowLibrary.resolve(reference, workspace: workspace)
        servedFlows.withLock { cache in
            if cache.count >= 64 { cache.removeAll() }
            cache[key] = spec
        }
        return spec
    }
}

extension GatewayService {
    /// A flow rollout's evaluation (docs/flows.md, "Rolling out a flow"): the spec run against
    /// the new deployment's flow over the registered dataset, as a stored run; its gates decide.
    public func evaluate(flow: String, evaluation: RolloutEvaluation, workspace: String) async throws -> (passed: Bool, summary: String, detail: String) {
        let (found, spec) = try await flowLibrary.resolve(flow, workspace: workspace)
        if spec.nodes.contains(where: { $0.kind == .tool || $0.body?.node.kind == .tool }) {
            throw LoomError.permissionDenied("a rollout's evaluation does not run flows with tool nodes; run that evaluation with loom eval run (an administrator's)")
        }
        let (rows, label) = try await datasetRows(evaluation.dataset, workspace: workspace)
        let run = try await evaluationRuns.create(
            specText: evaluation.spec, flowText: found.specText, flowRef: "\(found.name)@\(found.version)", rows: rows, dataset: label,
            failUnder: evaluation.failUnder, workspace: workspace)
        let report = try await evaluationRuns.execute(id: run.id, workspace: workspace, created: true)
        var lines: [String] = []
        var variants: [JSONValue] = []
        for v in report.variants {
            let failed = v.gates.filter { !$0.passed }.map { g in
                "\(g.metric) \(g.actual.map { String(format: "%.4g", $0) } ?? "not computed") needs \(g.op.rawValue) \(String(format: "%.4g", g.threshold))"
            }
            let means = v.aggregates.compactMapValues(\.mean)
            if !failed.isEmpty {
                lines.append("\(v.name): " + failed.joined(separator: "; "))
            } else {
                lines.append("\(v.name): " + means.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.3g", $0.value))" }.joined(separator: ", "))
            }
            variants.append(.object([
                "name": .string(v.name), "passed": .bool(v.passed), "failed_rows": .int(Int64(v.failedRows)),
                "means": .object(means.mapValues { .number($0, raw: nil) }),
            ]))
        }
        let detail = JSONValue.object([
            "evaluation_run": .string(run.id), "flow": .string("\(found.name)@\(found.version)"), "dataset": .string(label),
            "rows": .int(Int64(rows.count)), "variants": .array(variants),
        ])
        return (report.passed, "evaluation run \(run.id) on \(label): " + lines.joined(separator: " | "), detail.jsonString)
    }
}
