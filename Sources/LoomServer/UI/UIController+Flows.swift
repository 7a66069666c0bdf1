import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomStore

/// Flows' and evaluations' pages (docs/flows.md, docs/evaluation.md): stored flows with their
/// graph and recent runs (each a trace), evaluation runs with their scores side by side and a
/// per-row diff of two variants.
extension UIController {
    func addFlowRoutes(to routes: Routes) {
        routes.get("/flows") { request, context in try await flowList(request, context) }
        routes.get("/flows/:name") { request, context in try await flowPage(request, context) }
        routes.get("/evaluations") { request, context in try await evaluationList(request, context) }
        routes.get("/evaluations/:id") { request, context in try await evaluationPage(request, context) }
    }

    func flowList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            var rows = ""
            for f in try await services.gateway.flowLibrary.list(workspace: context.workspace) {
                let spec = try? FlowSpec.parse(yaml: f.specText)
                rows += """
                    <tr><td><a href="/flows/\(HTML.url(f.name))">\(HTML.escape(f.name))</a></td><td class="num">\(f.version)</td>\
                    <td class="num">\(spec?.nodes.count ?? 0)</td><td>\(HTML.escape(spec?.inputs.map { "\($0.name): \($0.type.rawValue)" }.joined(separator: ", ") ?? ""))</td>\
                    <td>\(HTML.escape(spec?.description ?? ""))</td><td>\(HTML.time(f.creationTime))</td></tr>
                    """
            }
            let body = """
                <h1>Flows</h1>
                <p class="muted">Store a <code>kind: flow</code> spec with <code>loom apply -f</code>; run it with <code>loom flow run --flow NAME</code> (docs/flows.md). \
                Evaluations of flows are under <a href="/evaluations">Evaluations</a>.</p>
                <table class="grid" id="flows"><thead><tr><th>Name</th><th>Version</th><th>Nodes</th><th>Inputs</th><th>Description</th><th>Updated</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No stored flows yet.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Flows", active: "flows", body: body)
        }
    }

    /// A flow: its graph, nodes, versions (`?version=N` shows an older one), YAML and recent runs.
    func flowPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let library = services.gateway.flowLibrary
            let versions = try await library.versions(workspace: context.workspace, name: name)
            var shown = versions[0]
            if let raw = request.uri.queryParameters["version"] {
                guard let v = Int64(raw), let found = versions.first(where: { $0.version == v }) else {
                    throw LoomError.notFound("Flow \(name) has no version \(raw)")
                }
                shown = found
            }
            let spec = try FlowSpec.parse(yaml: shown.specText)
            var nodes = ""
            for n in spec.runOrder {
                nodes += """
                    <tr id="node-\(HTML.escape(n.name))"><td>\(HTML.escape(n.name))</td><td>\(HTML.escape(n.kind.rawValue))</td>\
                    <td>\(HTML.escape(n.needs.joined(separator: ", ")))</td><td>\(HTML.escape(n.variants.keys.sorted().joined(separator: ", ")))</td></tr>
                    """
            }
            let traces = try await services.store.gatewayTraces(workspace: context.workspace, route: name, failedOnly: false, before: nil, limit: 20)
            var runs = ""
            for t in traces where t.task == "flow" {
                runs += """
                    <tr><td><a href="/gateway/traces/\(HTML.url(t.id))">\(HTML.time(t.startTime))</a></td><td class="num">\(t.status)</td>\
                    <td class="num">\(String(format: "%.1f", Double(t.durationMicros) / 1000)) ms</td><td class="num">\(t.promptTokens + t.completionTokens)</td>\
                    <td>\(HTML.escape(t.error ?? ""))</td></tr>
                    """
            }
            let versionLinks = versions.map { v in
                v.version == shown.version ? "<strong>\(v.version)</strong>" : "<a href=\"/flows/\(HTML.url(name))?version=\(v.version)\">\(v.version)</a>"
            }.joined(separator: " ")
            let body = """
                <h1>Flow \(HTML.escape(name)) <span class="muted">version \(shown.version)</span></h1>
                <p>\(HTML.escape(spec.description ?? ""))</p>
                <p class="muted">Versions: \(versionLinks). Inputs: \(HTML.escape(spec.inputs.map { "\($0.name): \($0.type.rawValue)" }.joined(separator: ", "))). \
                Outputs: \(HTML.escape(spec.outputs.map(\.name).joined(separator: ", "))).</p>
                <section id="dag">\(Self.flowSVG(spec))</section>
                <h2>Nodes</h2>
                <table class="grid" id="nodes"><thead><tr><th>Node</th><th>Kind</th><th>Needs</th><th>Variants</th></tr></thead><tbody>\(nodes)</tbody></table>
                <h2>Recent runs</h2>
                <table class="grid" id="runs"><thead><tr><th>Started</th><th>Status</th><th>Duration</th><th>Tokens</th><th>Error</th></tr></thead>
                <tbody>\(runs.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No runs yet: <code>loom flow run --flow \(HTML.escape(name)) --input ...</code></td></tr>" : runs)</tbody></table>
                <h2>Spec</h2>
                <pre>\(HTML.escape(shown.specText))</pre>
                """
            return HTML.page(title: "Flow \(name)", active: "flows", body: body)
        }
    }

    static func flowKindColor(_ kind: String) -> String {
        switch kind {
        case "llm": return "#7c3aed"
        case "prompt": return "#2563eb"
        case "retrieve": return "#0891b2"
        case "tool": return "#ea580c"
        case "branch": return "#ca8a04"
        case "map": return "#16a34a"
        default: return "#6b7280"
        }
    }

    /// The flow's graph: a column per wave (a node stands right of every node it needs).
    static func flowSVG(_ spec: FlowSpec) -> String {
        var level: [String: Int] = [:]
        var boxes: [GraphBox] = []
        for n in spec.runOrder {
            let l = (n.needs.compactMap { level[$0] }.max() ?? -1) + 1
            level[n.name] = l
            boxes.append(GraphBox(
                id: n.name, level: l, needs: n.needs, color: flowKindColor(n.kind.rawValue),
                subtitle: n.kind.rawValue + (n.variants.isEmpty ? "" : " · \(n.variants.count) variants"), tooltip: "\(n.name) (\(n.kind.rawValue))",
                attributes: "class=\"node\" data-node=\"\(HTML.escape(n.name))\" data-kind=\"\(n.kind.rawValue)\"", anchor: "node-" + n.name))
        }
        return graphSVG(boxes, label: "flow graph")
    }

    func evaluationList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let name = request.uri.queryParameters["name"].map(String.init)
            var rows = ""
            for r in try await services.gateway.evaluationRuns.list(workspace: context.workspace, name: name, limit: 100) {
                let passed = r.passed.map { $0 ? "<span class=\"ok\">passed</span>" : "<span class=\"error\">failed</span>" } ?? "–"
                rows += """
                    <tr><td><a href="/evaluations/\(HTML.url(r.id))"><code>\(HTML.escape(String(r.id.prefix(12))))</code></a></td>\
                    <td><a href="/evaluations?name=\(HTML.url(r.name))">\(HTML.escape(r.name))</a></td><td>\(HTML.escape(r.status))</td>\
                    <td class="num">\(r.rowCount)</td><td>\(r.flow.map { f in "<a href=\"/flows/\(HTML.url(String(f.split(separator: "@")[0])))\">\(HTML.escape(f))</a>" } ?? "inline")</td>\
                    <td>\(HTML.escape(r.dataset))</td><td>\(passed)</td><td>\(HTML.time(r.creationTime))</td></tr>
                    """
            }
            let body = """
                <h1>Evaluations\(name.map { " of " + HTML.escape($0) } ?? "")</h1>
                <p class="muted">Run one with <code>loom eval run -f eval.yaml</code>; each run is stored as its rows finish, and <code>loom eval resume ID</code> finishes one that stopped (docs/evaluation.md).</p>
                <table class="grid" id="evaluations"><thead><tr><th>Run</th><th>Evaluation</th><th>Status</th><th>Rows</th><th>Flow</th><th>Dataset</th><th>Gates</th><th>Started</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No evaluation runs yet.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Evaluations", active: "evaluations", body: body)
        }
    }

    /// A run: aggregates of each variant side by side, gates, and the per-row diff of two
    /// variants (`?a=&b=&metric=&changed=true`).
    func evaluationPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .viewer)
            let view = try await services.gateway.evaluationRuns.view(id: id, workspace: context.workspace)
            guard let report = view.report else { throw LoomError.invalidState("evaluation run \(id) has a spec that no longer parses") }
            let variants = report.variants
            let metrics = Set(variants.flatMap { $0.aggregates.keys }).sorted()
            var table = ""
            for m in metrics {
                table += "<tr><td>\(HTML.escape(m))</td>"
                for v in variants {
                    let a = v.aggregates[m]
                    let mean = a?.mean.map { String(format: "%.3f", $0) } ?? "–"
                    table += "<td class=\"num\">\(mean)\(a.map { $0.errors > 0 ? " <span class=\"error\">(\($0.errors) errors)</span>" : "" } ?? "")</td>"
                }
                table += "</tr>"
            }
            var gates = ""
            for v in variants {
                for g in v.gates {
                    gates += """
                        <tr><td>\(HTML.escape(v.name))</td><td>\(HTML.escape(g.metric))</td><td>\(HTML.escape(g.op.rawValue)) \(HTML.number(g.threshold))</td>\
                        <td class="num">\(g.actual.map { String(format: "%.3f", $0) } ?? "–")</td><td>\(g.passed ? "<span class=\"ok\">passed</span>" : "<span class=\"error\">failed</span>")</td></tr>
                        """
                }
            }
            var diffSection = "<p class=\"muted\">One variant: no comparison.</p>"
            let q = request.uri.queryParameters
            if variants.count >= 2 {
                let diff = try EvaluationDiff(
                    report: report, a: q["a"].map(String.init), b: q["b"].map(String.init), metric: q["metric"].map(String.init),
                    changedOnly: q["changed"] == "true", limit: 500)
                func side(_ s: EvaluationDiff.Side) -> String {
                    let score = s.score.map { String(format: "%.3g", $0) } ?? (s.error != nil ? "<span class=\"error\">error</span>" : "–")
                    let trace = s.traceId.map { " <a href=\"/gateway/traces/\(HTML.url($0))\">trace</a>" } ?? ""
                    return "<td>\(HTML.escape(String((s.answer ?? s.error ?? "").prefix(400))))\(trace)</td><td class=\"num\">\(score)</td>"
                }
                var rows = ""
                for e in diff.rows {
                    rows += "<tr data-winner=\"\(e.winner.rawValue)\"><td class=\"num\">\(e.row)</td><td>\(HTML.escape(String(e.question.prefix(200))))</td>\(side(e.a))\(side(e.b))<td>\(e.winner.rawValue)</td></tr>"
                }
                let metricLinks = metrics.filter { $0 != "failed_rows" }.map { m in
                    m == diff.metric ? "<strong>\(HTML.escape(m))</strong>" : "<a href=\"/evaluations/\(HTML.url(id))?metric=\(HTML.url(m))\">\(HTML.escape(m))</a>"
                }.joined(separator: " ")
                diffSection = """
                    <p>On <strong>\(HTML.escape(diff.metric))</strong>: \(HTML.escape(diff.a)) won \(diff.winsA) rows, \(HTML.escape(diff.b)) won \(diff.winsB), \(diff.ties) ties. \
                    Metric: \(metricLinks). <a href="/evaluations/\(HTML.url(id))?metric=\(HTML.url(diff.metric))&changed=true">Only rows that differ</a>.</p>
                    <table class="grid" id="diff"><thead><tr><th>Row</th><th>Question</th><th>\(HTML.escape(diff.a))</th><th>Score</th><th>\(HTML.escape(diff.b))</th><th>Score</th><th>Winner</th></tr></thead>
                    <tbody>\(rows)</tbody></table>
                    """
            }
            let body = """
                <h1>Evaluation \(HTML.escape(view.name)) <span class="muted"><code>\(HTML.escape(id))</code></span></h1>
                <p>Status <strong>\(HTML.escape(view.status))</strong>: \(view.rowsDone) results for \(view.rowCount) rows × \(variants.count) variants. \
                Flow \(HTML.escape(view.flow ?? "inline")), dataset \(HTML.escape(view.dataset)). \
                \(view.passed.map { $0 ? "<span class=\"ok\">Gates passed.</span>" : "<span class=\"error\">Gates failed.</span>" } ?? "")\
                \(view.error.map { " <span class=\"error\">\(HTML.escape($0))</span>" } ?? "")</p>
                <h2>Scores</h2>
                <table class="grid" id="scores"><thead><tr><th>Metric (mean)</th>\(variants.map { "<th>\(HTML.escape($0.name))</th>" }.joined())</tr></thead><tbody>\(table)</tbody></table>
                \(gates.isEmpty ? "" : "<h2>Gates</h2><table class=\"grid\" id=\"gates\"><thead><tr><th>Variant</th><th>Metric</th><th>Threshold</th><th>Actual</th><th></th></tr></thead><tbody>\(gates)</tbody></table>")
                <h2>Row by row</h2>
                \(diffSection)
                """
            return HTML.page(title: "Evaluation \(view.name)", active: "evaluations", body: body)
        }
    }
}
