import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI

/// `/api/v1/flows/...`: runs flows (docs/flows.md) given as YAML, checked whole before they run;
/// `/api/v1/evaluations/run`: a flow over a dataset's rows, scored (docs/evaluation.md).
extension APIv1Controller {
    struct FlowCheckBody: Encodable, Sendable {
        struct NodeBody: Encodable, Sendable {
            let name: String
            let kind: String
            let needs: [String]
            let variants: [String]
        }

        let flow: String
        let inputs: [String: String]
        let outputs: [String]
        let nodes: [NodeBody]
    }

    static func hasTools(_ spec: FlowSpec) -> Bool {
        spec.nodes.contains { $0.kind == .tool || $0.body?.node.kind == .tool }
    }

    func addFlowRoutes(to routes: Routes) {
        let p = Self.prefix + "/flows"
        let runner = services.gateway.flows
        let evaluations = services.gateway.evaluations
        let auth = self.auth

        // {spec: YAML}: the flow checked, its nodes in the order they run.
        routes.post("\(p)/validate") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .viewer)
            let spec = try FlowSpec.parse(yaml: try body.requiredString("spec"))
            return try Self.respond(FlowCheckBody(
                flow: spec.name, inputs: Dictionary(spec.inputs.map { ($0.name, $0.type.rawValue) }, uniquingKeysWith: { a, _ in a }),
                outputs: spec.outputs.map(\.name),
                nodes: spec.runOrder.map { n in
                    FlowCheckBody.NodeBody(name: n.name, kind: n.kind.rawValue, needs: n.needs, variants: n.variants.keys.sorted())
                }))
        }
        // {spec: evaluation YAML, flow: flow YAML, rows: [{question, expected, ...}], fail_under: "metric=value,..."}
        routes.post(Self.prefix + "/evaluations/run") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let spec = try EvaluationSpec.parse(yaml: try body.requiredString("spec"))
            let flow = try FlowSpec.parse(yaml: try body.requiredString("flow"))
            if Self.hasTools(flow) { try await auth.requireRole(context, .admin) }
            let rows = try body.array("rows").enumerated().map { i, row throws(LoomError) -> [String: JSONValue] in
                guard let o = row.objectValue else { throw LoomError.invalidParameter("rows[\(i)] must be an object") }
                return o
            }
            var gate: Gate?
            if let text = try body.string("fail_under"), !text.trimmingCharacters(in: .whitespaces).isEmpty {
                do { gate = try Gate(parsing: text) } catch { throw LoomError.invalidParameter("fail_under: \(error)") }
            }
            let report = try await evaluations.run(spec, flow: flow, rows: rows, workspace: context.workspace, failUnder: gate)
            return try Self.respond(report)
        }
        // {spec: YAML, inputs: {...}, variants: {node: variant}}: one run, with its trace id.
        routes.post("\(p)/run") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let spec = try FlowSpec.parse(yaml: try body.requiredString("spec"))
            // A tool node makes the server call any URL it names: an administrator's, like pipeline commands.
            if Self.hasTools(spec) { try await auth.requireRole(context, .admin) }
            guard let inputs = body.fields["inputs"].map({ $0 == .null ? [:] : $0.objectValue }) ?? [:] else {
                throw LoomError.invalidParameter("inputs must be an object of the flow's inputs")
            }
            var variants: [String: String] = [:]
            for (node, value) in try body.object("variants")?.fields ?? [:] {
                guard let v = value.stringValue else { throw LoomError.invalidParameter("variants.\(node) must be a variant's name") }
                variants[node] = v
            }
            let run = try await runner.run(spec, inputs: inputs, variants: variants, workspace: context.workspace, traceParent: request.headers[GatewayController.traceParent])
            return try Self.respond(run)
        }
    }
}
