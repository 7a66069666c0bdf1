import Foundation
import Hummingbird
import LoomCore
import LoomPipelines
import LoomStore
import LoomTracking

extension UIController {
    func addPipelineRoutes(to routes: Routes) {
        routes.get("/pipelines") { request, context in try await pipelineList(request, context) }
        routes.get("/pipelines/:name") { request, context in try await pipelinePage(request, context) }
        routes.get("/pipeline-runs/:id") { request, context in try await pipelineRunPage(request, context) }
        routes.get("/lineage") { request, context in try await lineagePage(request, context) }
    }

    static func stateTag(_ state: String) -> String {
        "<span class=\"tag state-\(HTML.escape(state))\">\(HTML.escape(state))</span>"
    }

    func pipelineList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let summaries = try await services.store.pipelineSummaries(workspace: context.workspace)
            let applied = Dictionary(try await services.store.appliedPipelines(workspace: context.workspace).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            var rows = ""
            for p in summaries {
                let last = p.lastRun.map { r in
                    "<a href=\"/pipeline-runs/\(HTML.url(r.id))\">\(HTML.time(r.startTime))</a> \(Self.stateTag(r.state.rawValue))"
                } ?? "–"
                rows += """
                    <tr><td><a href="/pipelines/\(HTML.url(p.name))">\(HTML.escape(p.name))</a></td><td class="num">\(p.versions)</td>\
                    <td>\(applied[p.name].map { "v\($0.version)" } ?? "–")</td><td class="num">\(p.runs)</td><td>\(last)</td></tr>
                    """
            }
            let body = """
                <h1>Pipelines</h1>
                <table class="grid" id="pipelines"><thead><tr><th>Name</th><th>Versions</th><th>Applied</th><th>Runs</th><th>Last run</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No pipelines yet: <code>loom pipeline run -f pipeline.yaml</code>.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Pipelines", active: "pipelines", body: body)
        }
    }

    func pipelinePage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let versions = try await services.store.pipelineVersions(name: name, workspace: context.workspace)
            guard !versions.isEmpty else { throw LoomError.notFound("No pipeline named \(name)") }
            let runs = try await services.store.pipelineRuns(pipeline: name, workspace: context.workspace, limit: 100)
            var rows = ""
            for r in runs {
                rows += """
                    <tr><td><a href="/pipeline-runs/\(HTML.url(r.id))">\(HTML.escape(String(r.id.prefix(12))))</a></td><td>v\(r.pipelineVersion)</td>\
                    <td>\(Self.stateTag(r.state.rawValue))</td><td>\(HTML.escape(r.trigger))</td><td>\(HTML.time(r.startTime))</td>\
                    <td class="num">\(HTML.duration(r.startTime, r.endTime))</td><td>\(HTML.escape(r.message ?? ""))</td></tr>
                    """
            }
            let body = """
                <p class="crumbs"><a href="/pipelines">Pipelines</a> /</p>
                <h1 id="pipeline-name">\(HTML.escape(name))</h1>
                <p>\(versions.count) version\(versions.count == 1 ? "" : "s"), the newest v\(versions[0].version) (\(HTML.time(versions[0].creationTime)))</p>
                <table class="grid" id="pipeline-runs"><thead><tr><th>Run</th><th>Version</th><th>State</th><th>Trigger</th><th>Started</th><th>Duration</th><th>Message</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No runs yet.</td></tr>" : rows)</tbody></table>
                <details><summary>Spec (v\(versions[0].version))</summary><pre>\(HTML.escape(versions[0].spec))</pre></details>
                """
            return HTML.page(title: name, active: "pipelines", body: body)
        }
    }

    /// A run as a DAG (steps in columns by level, coloured by state) and a table of its steps.
    func pipelineRunPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .viewer)
            guard let run = try await services.store.pipelineRun(id: id), run.workspace == context.workspace else {
                throw LoomError.notFound("No pipeline run \(id)")
            }
            let steps = Dictionary(try await services.store.stepRuns(pipelineRunID: id).map { ($0.step, $0) }, uniquingKeysWith: { a, _ in a })
            let version = try await services.store.pipelineVersion(name: run.pipeline, version: run.pipelineVersion, workspace: run.workspace)
            let spec = version.flatMap { try? PipelineSpec.parse(yaml: $0.spec) }
            let plan = spec.flatMap { try? PipelinePlan($0) }
            var svg = ""
            if let spec, let plan {
                svg = Self.dagSVG(spec: spec, plan: plan, steps: steps, runID: id)
            }
            var rows = ""
            let ordered = plan.map { p in p.order.map { spec!.steps[$0].name } } ?? steps.keys.sorted()
            for name in ordered {
                guard let s = steps[name] else { continue }
                let kind = spec?.step(name)?.kind.rawValue ?? ""
                let tracking = s.trackingRunID.map { "<a href=\"/runs/\(HTML.url($0))\">\(HTML.escape(String($0.prefix(12))))</a>" } ?? "–"
                let logs = kind == "command" && s.state != .cached && s.state != .skipped && s.state != .pending
                    ? "<a href=\"/api/v1/pipeline-runs/\(HTML.url(id))/steps/\(HTML.url(name))/logs\">stdout</a> · <a href=\"/api/v1/pipeline-runs/\(HTML.url(id))/steps/\(HTML.url(name))/logs?stream=stderr\">stderr</a>"
                    : "–"
                rows += """
                    <tr id="step-\(HTML.escape(name))"><td>\(HTML.escape(name))</td><td>\(HTML.escape(kind))</td><td>\(Self.stateTag(s.state.rawValue))</td>\
                    <td class="num">\(s.attempts)</td><td class="num">\(s.startTime.map { HTML.duration($0, s.endTime) } ?? "–")</td>\
                    <td>\(tracking)</td><td>\(logs)</td><td>\(HTML.escape(s.message ?? ""))</td></tr>
                    """
            }
            let body = """
                <p class="crumbs"><a href="/pipelines">Pipelines</a> / <a href="/pipelines/\(HTML.url(run.pipeline))">\(HTML.escape(run.pipeline))</a> /</p>
                <h1 id="pipeline-run">Run \(HTML.escape(String(run.id.prefix(12)))) \(Self.stateTag(run.state.rawValue))</h1>
                <p>version \(run.pipelineVersion) · \(HTML.escape(run.trigger)) · started \(HTML.time(run.startTime)) · \(HTML.duration(run.startTime, run.endTime))\
                \(run.trackingRunID.map { " · tracking run <a href=\"/runs/\(HTML.url($0))\">\(HTML.escape(String($0.prefix(12))))</a>" } ?? "")</p>
                \(run.message.map { "<p class=\"error\">\(HTML.escape($0))</p>" } ?? "")
                <section id="dag">\(svg)</section>
                <table class="grid" id="steps"><thead><tr><th>Step</th><th>Kind</th><th>State</th><th>Attempts</th><th>Duration</th><th>Tracking run</th><th>Logs</th><th>Message</th></tr></thead>
                <tbody>\(rows)</tbody></table>
                <p class="muted">Parameters: <code>\(HTML.escape(run.parameters))</code></p>
                """
            return HTML.page(title: "Pipeline run", active: "pipelines", body: body)
        }
    }

    static func stateColor(_ state: String) -> String {
        switch state {
        case "succeeded": return "#16a34a"
        case "cached": return "#0891b2"
        case "failed": return "#dc2626"
        case "running": return "#2563eb"
        case "skipped", "cancelled": return "#9ca3af"
        default: return "#d1d5db"
        }
    }

    static func dagSVG(spec: PipelineSpec, plan: PipelinePlan, steps: [String: StepRun], runID: String) -> String {
        var boxes: [GraphBox] = []
        for i in plan.order {
            let step = spec.steps[i]
            let s = steps[step.name]
            let state = s?.state.rawValue ?? "pending"
            let duration = s?.startTime.map { HTML.duration($0, s?.endTime) } ?? ""
            let label = state == "cached" ? "cached" : "\(state) \(duration == "–" ? "" : duration)"
            boxes.append(GraphBox(
                id: step.name, level: plan.levels[i], needs: plan.dependencies[i].map { spec.steps[$0].name }, color: stateColor(state),
                subtitle: "\(step.kind.rawValue) · \(label.trimmingCharacters(in: .whitespaces))", tooltip: "\(step.name): \(s?.message ?? state)",
                attributes: "class=\"step\" data-step=\"\(HTML.escape(step.name))\" data-state=\"\(state)\"", anchor: "step-" + step.name))
        }
        return graphSVG(boxes, label: "pipeline run graph")
    }

    /// A box of a graph drawn by `graphSVG`: a node in its column (`level`), linked from what it needs.
    struct GraphBox {
        var id: String
        var level: Int
        var needs: [String]
        var color: String
        var subtitle: String
        var tooltip: String
        /// Attributes of the box's `<g>` (escaped by the caller).
        var attributes: String
        /// The in-page anchor the box links to.
        var anchor: String
    }

    /// A left-to-right graph: a column per level, boxes in their order within it, a curve from
    /// each box to every box that needs it.
    static func graphSVG(_ boxes: [GraphBox], label: String) -> String {
        let boxW = 150, boxH = 44, gapX = 50, gapY = 16
        var row: [String: Int] = [:]
        var level: [String: Int] = [:]
        var perLevel: [Int: Int] = [:]
        for b in boxes {
            level[b.id] = b.level
            row[b.id] = perLevel[b.level, default: 0]
            perLevel[b.level, default: 0] += 1
        }
        func x(_ id: String) -> Int { 10 + (level[id] ?? 0) * (boxW + gapX) }
        func y(_ id: String) -> Int { 10 + (row[id] ?? 0) * (boxH + gapY) }
        let levels = (boxes.map(\.level).max() ?? 0) + 1
        let width = 20 + levels * (boxW + gapX) - gapX
        let height = 20 + max(1, perLevel.values.max() ?? 1) * (boxH + gapY) - gapY
        var out = "<svg class=\"dag\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(label)\">"
        for b in boxes {
            for d in b.needs where level[d] != nil {
                let x1 = x(d) + boxW, y1 = y(d) + boxH / 2, x2 = x(b.id), y2 = y(b.id) + boxH / 2
                out += "<path d=\"M\(x1),\(y1) C\(x1 + gapX / 2),\(y1) \(x2 - gapX / 2),\(y2) \(x2),\(y2)\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"1.5\"/>"
            }
        }
        for b in boxes {
            out += "<g \(b.attributes)><title>\(HTML.escape(b.tooltip))</title>"
            out += "<a href=\"#\(HTML.escape(b.anchor))\"><rect x=\"\(x(b.id))\" y=\"\(y(b.id))\" width=\"\(boxW)\" height=\"\(boxH)\" rx=\"6\" fill=\"#fff\" stroke=\"\(b.color)\" stroke-width=\"2.5\"/>"
            out += "<text x=\"\(x(b.id) + 8)\" y=\"\(y(b.id) + 18)\" font-size=\"13\" font-weight=\"600\">\(HTML.escape(String(b.id.prefix(18))))</text>"
            out += "<text x=\"\(x(b.id) + 8)\" y=\"\(y(b.id) + 35)\" font-size=\"11\" fill=\"\(b.color)\">\(HTML.escape(b.subtitle))</text></a></g>"
        }
        return out + "</svg>"
    }

    /// The lineage graph around a node: upstream to the left, downstream to the right.
    func lineagePage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            guard let text = request.query["node"], !text.isEmpty else {
                let body = """
                    <h1>Lineage</h1>
                    <form class="toolbar" method="get" action="/lineage"><input type="search" name="node" placeholder="model:churn@production or dataset:customers@3"><button type="submit">Show</button></form>
                    """
                return HTML.page(title: "Lineage", active: "pipelines", body: body)
            }
            let node = try await tracking.lineageNode(text, workspace: context.workspace)
            let graph = try await tracking.lineage(of: node, depth: 12, limit: 200, workspace: context.workspace)
            let body = """
                <p class="crumbs"><a href="/lineage">Lineage</a> /</p>
                <h1 id="lineage-root">\(HTML.escape(node))</h1>
                <section id="lineage-graph">\(Self.lineageSVG(graph))</section>
                \(graph.truncated ? "<p class=\"muted\">Stopped at \(graph.nodes.count) nodes.</p>" : "")
                """
            return HTML.page(title: "Lineage", active: "pipelines", body: body)
        }
    }

    /// Where a lineage node's own page is.
    static func link(_ id: String) -> String? {
        let kind = LineageNodes.kind(id)
        let rest = String(id.dropFirst(kind.count + 1))
        switch kind {
        case "dataset":
            guard let at = rest.lastIndex(of: "@") else { return nil }
            return "/datasets/\(HTML.url(String(rest[..<at])))?version=\(HTML.url(String(rest[rest.index(after: at)...])))"
        case "model":
            return "/models/\(HTML.url(String(rest.split(separator: "/").first ?? "")))"
        case "step":
            return "/pipeline-runs/\(HTML.url(String(rest.split(separator: "/").first ?? "")))"
        case "artifact":
            guard rest.hasPrefix("runs:/"), let run = rest.dropFirst("runs:/".count).split(separator: "/").first else { return nil }
            return "/runs/\(HTML.url(String(run)))"
        default:
            return nil
        }
    }

    static func lineageSVG(_ graph: LineageGraph) -> String {
        // Columns by signed distance from the root: upstream negative, downstream positive.
        var column: [String: Int] = [graph.root: 0]
        var frontier = [graph.root]
        while !frontier.isEmpty {
            var next: [String] = []
            for n in frontier {
                for e in graph.edges {
                    if e.target == n, column[e.source] == nil, column[n]! <= 0 { column[e.source] = column[n]! - 1; next.append(e.source) }
                    if e.source == n, column[e.target] == nil, column[n]! >= 0 { column[e.target] = column[n]! + 1; next.append(e.target) }
                }
            }
            frontier = next
        }
        let minColumn = column.values.min() ?? 0
        let maxColumn = column.values.max() ?? 0
        let boxW = 230, boxH = 40, gapX = 60, gapY = 14
        var rows: [Int: Int] = [:]
        var position: [String: (Int, Int)] = [:]
        for node in graph.nodes {
            guard let c = column[node.id] else { continue }
            let r = rows[c, default: 0]
            rows[c] = r + 1
            position[node.id] = (10 + (c - minColumn) * (boxW + gapX), 10 + r * (boxH + gapY))
        }
        let width = 20 + (maxColumn - minColumn + 1) * (boxW + gapX) - gapX
        let height = 20 + (rows.values.max() ?? 1) * (boxH + gapY) - gapY
        var out = "<svg class=\"lineage\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"lineage graph\">"
        for e in graph.edges {
            guard let a = position[e.source], let b = position[e.target] else { continue }
            let (x1, y1, x2, y2) = (a.0 + boxW, a.1 + boxH / 2, b.0, b.1 + boxH / 2)
            out += "<path d=\"M\(x1),\(y1) C\(x1 + gapX / 2),\(y1) \(x2 - gapX / 2),\(y2) \(x2),\(y2)\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"1.2\"><title>\(HTML.escape(e.relation))</title></path>"
        }
        let colors = ["dataset": "#0891b2", "model": "#7c3aed", "step": "#2563eb", "artifact": "#ca8a04", "file": "#6b7280"]
        for node in graph.nodes {
            guard let (x, y) = position[node.id] else { continue }
            let color = colors[node.kind] ?? "#6b7280"
            let detail = ["state", "aliases", "rows", "pipeline"].compactMap { k in node.details[k].map { "\(k) \($0)" } }.joined(separator: " · ")
            var box = "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(boxW)\" height=\"\(boxH)\" rx=\"6\" fill=\"#fff\" stroke=\"\(color)\" stroke-width=\"\(node.id == graph.root ? 3 : 1.5)\"/>"
            box += "<text x=\"\(x + 8)\" y=\"\(y + 17)\" font-size=\"12\" font-weight=\"600\">\(HTML.escape(String(node.id.prefix(34))))</text>"
            box += "<text x=\"\(x + 8)\" y=\"\(y + 32)\" font-size=\"10\" fill=\"\(color)\">\(HTML.escape(String(detail.prefix(40))))</text>"
            let wrapped = link(node.id).map { "<a href=\"\(HTML.escape($0))\">\(box)</a>" } ?? box
            out += "<g class=\"node\" data-node=\"\(HTML.escape(node.id))\"><title>\(HTML.escape(node.id))</title>\(wrapped)</g>"
        }
        return out + "</svg>"
    }
}
