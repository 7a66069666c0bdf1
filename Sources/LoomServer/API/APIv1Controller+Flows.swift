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

    struct FlowVersionBody: Encodable, Sendable {
        let version: Int64
        let createdBy: String
        let creationTime: Millis
    }

    struct FlowBody: Encodable, Sendable {
        let name: String
        let version: Int64
        let createdBy: String
        let creationTime: Millis
        let description: String?
        let inputs: [String: String]?
        let outputs: [String]?
        let nodes: [FlowCheckBody.NodeBody]?
        let spec: String?
        var versions: [FlowVersionBody]?
    }

    struct AppliedFlow: Encodable, Sendable {
        let flow: FlowBody
        let changed: Bool
    }

    static func flowBody(_ v: FlowVersion, spec: FlowSpec?, withSpec: Bool) -> FlowBody {
        FlowBody(
            name: v.name, version: v.version, createdBy: v.createdBy, creationTime: v.creationTime, description: spec?.description,
            inputs: spec.map { Dictionary($0.inputs.map { ($0.name, $0.type.rawValue) }, uniquingKeysWith: { a, _ in a }) },
            outputs: spec?.outputs.map(\.name),
            nodes: spec?.runOrder.map { FlowCheckBody.NodeBody(name: $0.name, kind: $0.kind.rawValue, needs: $0.needs, variants: $0.variants.keys.sorted()) },
            spec: withSpec ? v.specText : nil, versions: nil)
    }

    /// The flow a request names: `spec` (YAML) or `flow` (a stored flow, `NAME` or `NAME@VERSION`).
    static func flow(_ body: JSONBody, library: FlowLibrary, workspace: String) async throws -> (FlowSpec, text: String, reference: String?) {
        let text = try body.string("spec")
        let reference = try body.string("flow")
        switch (text, reference) {
        case (let text?, nil):
            return (try FlowSpec.parse(yaml: text), text, nil)
        case (nil, let reference?):
            let (found, spec) = try await library.resolve(reference, workspace: workspace)
            return (spec, found.specText, "\(found.name)@\(found.version)")
        case (.some, .some):
            throw LoomError.invalidParameter("spec and flow: give the flow's YAML (spec) or a stored flow's name (flow), not both")
        case (nil, nil):
            throw LoomError.invalidParameter("Missing value for required parameter 'spec' (the flow's YAML) or 'flow' (a stored flow's NAME[@VERSION]).")
        }
    }

    static func hasTools(_ spec: FlowSpec) -> Bool {
        spec.nodes.contains { $0.kind == .tool || $0.body?.node.kind == .tool }
    }

    func addFlowRoutes(to routes: Routes) {
        let p = Self.prefix + "/flows"
        let runner = services.gateway.flows
        let library = services.gateway.flowLibrary
        let auth = self.auth

        // {spec: YAML}: stores the flow; a changed text is its next version.
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let (saved, spec, changed) = try await library.apply(yaml: try body.requiredString("spec"), workspace: context.workspace, actor: context.actor.username)
            return try Self.respond(AppliedFlow(flow: Self.flowBody(saved, spec: spec, withSpec: false), changed: changed), status: changed && saved.version == 1 ? .created : .ok)
        }
        routes.get(p) { _, context in
            try await auth.requireRole(context, .viewer)
            let items = try await library.list(workspace: context.workspace).map { Self.flowBody($0, spec: try? FlowSpec.parse(yaml: $0.specText), withSpec: false) }
            return try Self.respond(Listing(items: items, nextPageToken: nil))
        }
        // The newest version with its spec and nodes, and the list of versions.
        routes.get("\(p)/:name") { _, context in
            try await auth.requireRole(context, .viewer)
            let versions = try await library.versions(workspace: context.workspace, name: try Self.param(context, "name"))
            var out = Self.flowBody(versions[0], spec: try? FlowSpec.parse(yaml: versions[0].specText), withSpec: true)
            out.versions = versions.map { FlowVersionBody(version: $0.version, createdBy: $0.createdBy, creationTime: $0.creationTime) }
            return try Self.respond(out)
        }
        routes.get("\(p)/:name/versions/:version") { _, context in
            try await auth.requireRole(context, .viewer)
            let name = try Self.param(context, "name")
            let raw = try Self.param(context, "version")
            guard let v = Int64(raw), v > 0 else { throw LoomError.invalidParameter("version must be a positive whole number, not '\(raw)'") }
            let (found, spec) = try await library.resolve("\(name)@\(v)", workspace: context.workspace)
            return try Self.respond(Self.flowBody(found, spec: spec, withSpec: true))
        }
        routes.delete("\(p)/:name") { _, context in
            try await auth.requireRole(context, .editor)
            try await library.delete(workspace: context.workspace, name: try Self.param(context, "name"))
            return Self.noContent
        }

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
        // {spec: YAML, inputs: {...}, variants: {node: variant}}: one run, with its trace id.
        routes.post("\(p)/run") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let (spec, _, _) = try await Self.flow(body, library: library, workspace: context.workspace)
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
