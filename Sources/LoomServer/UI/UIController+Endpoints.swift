import Foundation
import Hummingbird
import LoomCore
import LoomServing
import LoomStore

extension UIController {
    func addEndpointRoutes(to routes: Routes) {
        routes.get("/endpoints") { request, context in try await endpointList(request, context) }
        routes.get("/endpoints/:name") { request, context in try await endpointPage(request, context) }
    }

    func endpointList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            var rows = ""
            for e in try await services.store.endpoints(workspace: context.workspace) {
                let active = try await services.store.rollouts(endpoint: e.name, workspace: context.workspace, limit: 1).first
                let rollout = active.map { r in "\(Self.stateTag(r.state.rawValue)) \(HTML.escape(r.baseline)) → \(HTML.escape(r.spec.deployment))" } ?? "–"
                rows += """
                    <tr><td><a href="/endpoints/\(HTML.url(e.name))">\(HTML.escape(e.name))</a></td><td>\(HTML.escape(TrafficPolicy.describe(e.traffic)))</td>\
                    <td>\(HTML.escape(TrafficPolicy.describe(e.mirror) == "no traffic" ? "–" : TrafficPolicy.describe(e.mirror)))</td>\
                    <td>\(HTML.escape(e.auth.rawValue))</td><td class="num">\(e.samplingRate)</td><td>\(rollout)</td></tr>
                    """
            }
            let body = """
                <h1>Endpoints</h1>
                <table class="grid" id="endpoints"><thead><tr><th>Name</th><th>Live traffic</th><th>Mirror</th><th>Auth</th><th>Sampling</th><th>Latest rollout</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No endpoints yet: <code>loom endpoint create NAME</code>.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Endpoints", active: "endpoints", body: body)
        }
    }

    /// An endpoint: its settings, its deployments with their weights and readiness (as this
    /// server sees them), and its rollouts with their decision logs.
    func endpointPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            guard let e = try await services.store.endpoint(name: name, workspace: context.workspace) else {
                throw LoomError.notFound("No endpoint named \(name)")
            }
            let live = services.serving.router.endpoint(workspace: context.workspace, name: name)
            var deployments = ""
            for d in try await services.store.deployments(endpoint: name, workspace: context.workspace) {
                let weight = e.traffic[d.name] ?? 0
                let mirror = e.mirror[d.name] ?? 0
                var ready = live?.deployments[d.name]?.runtime.isReady == true ? "yes" : "no"
                if let replicas = (live?.deployments[d.name]?.runtime as? ProcessRuntime)?.status {
                    let restarts = replicas.reduce(0) { $0 + $1.restarts }
                    ready = "\(replicas.filter(\.ready).count)/\(replicas.count) replicas" + (restarts > 0 ? ", \(restarts) restart\(restarts == 1 ? "" : "s")" : "")
                }
                let model = d.modelVersion.map { v -> String in
                    let parts = v.split(separator: "/", maxSplits: 1).map(String.init)
                    return parts.count == 2 ? "<a href=\"/models/\(HTML.url(parts[0]))/versions/\(HTML.url(parts[1]))\">\(HTML.escape(v))</a>" : HTML.escape(v)
                } ?? "–"
                // SVG, not a styled span: the pages' Content-Security-Policy allows no inline styles.
                let bar = "<svg class=\"bar\" width=\"80\" height=\"8\"><rect class=\"bar-bg\" width=\"80\" height=\"8\" rx=\"4\"/><rect class=\"bar-fill\" width=\"\(Double(weight) * 0.8)\" height=\"8\" rx=\"4\"/></svg>"
                deployments += """
                    <tr><td>\(HTML.escape(d.name))</td><td>\(HTML.escape(d.runtime.rawValue))</td><td>\(model)</td>\
                    <td class="num">\(weight)% \(bar)</td><td class="num">\(mirror > 0 ? "\(mirror)%" : "–")</td><td>\(HTML.escape(ready))</td>\
                    <td><a href="/lineage?node=\(HTML.url(LineageNodes.deployment(name, d.name)))">lineage</a></td></tr>
                    """
            }
            var rollouts = ""
            for r in try await services.store.rollouts(endpoint: name, workspace: context.workspace, limit: 5) {
                var log = ""
                for d in try await services.store.rolloutDecisions(id: r.id) {
                    log += """
                        <tr><td>\(HTML.time(d.time))</td><td>\(HTML.escape(d.kind))</td><td>\(HTML.escape(d.outcome))</td>\
                        <td>\(HTML.escape(d.summary))</td><td>\(HTML.escape(d.actor))</td></tr>
                        """
                }
                let stages = RolloutController.stages(r.spec).map(RolloutController.describe).joined(separator: " → ")
                rollouts += """
                    <section class="rollout" id="rollout-\(HTML.escape(r.id))">
                    <h3>\(Self.stateTag(r.state.rawValue)) \(HTML.escape(r.spec.strategy.rawValue)) \(HTML.escape(r.baseline)) → \(HTML.escape(r.spec.deployment))</h3>
                    <p class="muted">\(HTML.escape(stages)), bake \(HTML.escape(RolloutController.seconds(r.spec.bakeSeconds))); started \(HTML.time(r.creationTime)) by \(HTML.escape(r.createdBy))</p>
                    <table class="grid decisions"><thead><tr><th>Time</th><th>Decision</th><th>Outcome</th><th>Why</th><th>By</th></tr></thead><tbody>\(log)</tbody></table>
                    </section>
                    """
            }
            let body = """
                <p class="crumbs"><a href="/endpoints">Endpoints</a> /</p>
                <h1 id="endpoint-name">\(HTML.escape(name))</h1>
                <p>\(HTML.escape(e.description))</p>
                <dl class="facts"><dt>Scoring</dt><dd><code>POST /endpoints/\(HTML.escape(name))/invocations</code></dd>\
                <dt>Auth</dt><dd>\(HTML.escape(e.auth.rawValue))</dd>\
                <dt>Sampling</dt><dd>\(e.samplingRate)</dd><dt>Concurrency limit</dt><dd>\(e.concurrencyLimit.map(String.init) ?? "none")</dd>\
                <dt>Timeout</dt><dd>\(e.timeoutMillis) ms</dd><dt>Sticky by</dt><dd>\(HTML.escape(e.stickyHeader ?? "–"))</dd></dl>
                <h2>Deployments</h2>
                <table class="grid" id="deployments"><thead><tr><th>Name</th><th>Runtime</th><th>Model</th><th>Live traffic</th><th>Mirror</th><th>Ready</th><th></th></tr></thead>
                <tbody>\(deployments.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No deployments yet: <code>loom endpoint deploy</code>.</td></tr>" : deployments)</tbody></table>
                <h2>Rollouts</h2>
                \(rollouts.isEmpty ? "<p class=\"muted\">No rollouts yet: <code>loom endpoint rollout \(HTML.escape(name)) --to model:NAME@ALIAS</code>.</p>" : rollouts)
                """
            return HTML.page(title: name, active: "endpoints", body: body)
        }
    }
}
