import Foundation
import HTTPTypes
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking
import NIOCore

/// The web UI: server-rendered HTML pages, SVG charts drawn on the server, a little JavaScript.
struct UIController {
    typealias Context = LoomRequestContext
    let services: ServerServices
    var tracking: TrackingService { services.tracking }
    var auth: Authorization { Authorization(access: services.access, tracking: services.tracking) }
    static let pageSize = 50

    func addRoutes(to routes: Routes) {
        routes.get("/") { request, context in try await experimentList(request, context) }
        routes.get("/experiments/:experiment_id") { request, context in try await experimentPage(request, context) }
        routes.get("/runs/:run_id") { request, context in try await runPage(request, context) }
        routes.get("/runs/:run_id/plots/:name") { request, context in try await runPlot(request, context) }
        routes.get("/compare") { request, context in try await comparePage(request, context) }
        routes.get("/models") { request, context in try await modelList(request, context) }
        routes.get("/models/:name") { request, context in try await modelPage(request, context) }
        routes.get("/datasets") { request, context in try await datasetList(request, context) }
        routes.get("/datasets/:name") { request, context in try await datasetPage(request, context) }
        addPipelineRoutes(to: routes)
        addEndpointRoutes(to: routes)
        addMonitorRoutes(to: routes)
        addGatewayRoutes(to: routes)
        addIndexRoutes(to: routes)
        addFlowRoutes(to: routes)
        routes.get("/static/loom.css") { _, _ in Self.asset(UIAssets.css, "text/css; charset=utf-8") }
        routes.get("/static/loom.js") { _, _ in Self.asset(UIAssets.js, "text/javascript; charset=utf-8") }
    }

    static func asset(_ text: String, _ type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "public, max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Pages show errors as pages, not JSON.
    static func errorPage(_ error: LoomError) -> Response {
        var r = HTML.page(title: "Error", active: "", body: "<h1>\(error.code == .notFound ? "Not found" : "Cannot show this page")</h1><p class=\"error\">\(HTML.escape(error.message))</p><p><a href=\"/\">Back to experiments</a></p>")
        r.status = error.code.httpStatus
        return r
    }

    func guarded(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let e as LoomError where e.code != .unavailable && e.code != .unauthenticated && e.code != .internalError {
            return Self.errorPage(e)
        }
    }

    static func param(_ context: Context, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else { throw LoomError.invalidParameter("Invalid percent-encoding") }
        return decoded
    }

    // MARK: Experiments

    func experimentList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let q = request.query
            let search = (q["q"] ?? "").trimmingCharacters(in: .whitespaces)
            let filter = search.isEmpty ? nil : "name LIKE '%\(search.replacingOccurrences(of: "'", with: "''"))%'"
            let page = try await tracking.searchExperiments(filter: filter, orderBy: ["last_update_time DESC"], viewType: .activeOnly, maxResults: 500, pageToken: nil, workspace: context.workspace)
            var rows = ""
            for e in page.items where try await auth.canRead(context, experimentID: e.id) {
                let runs = try await services.store.countRuns(experimentIDs: [e.id], viewType: .activeOnly)
                rows += "<tr><td><a href=\"/experiments/\(HTML.url(e.id))\">\(HTML.escape(e.name))</a></td><td class=\"num\">\(HTML.escape(e.id))</td>"
                rows += "<td class=\"num\">\(runs)</td><td>\(HTML.time(e.lastUpdateTime))</td><td class=\"muted\">\(HTML.escape(e.artifactLocation))</td></tr>"
            }
            let body = """
                <h1>Experiments</h1>
                <form class="toolbar" method="get" action="/"><input type="search" name="q" placeholder="Filter by name" value="\(HTML.escape(search))"><button type="submit">Search</button></form>
                <table class="grid" id="experiments"><thead><tr><th>Name</th><th>ID</th><th>Runs</th><th>Last updated</th><th>Artifact location</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No experiments match.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Experiments", active: "experiments", body: body)
        }
    }

    func experimentPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let id = try Self.param(context, "experiment_id")
            let experiment = try await tracking.experiment(id: id)
            try await auth.requireExperiment(context, id, .read)
            let q = request.query
            let filter = (q["filter"] ?? "").trimmingCharacters(in: .whitespaces)
            let order = q["order"].flatMap { $0.isEmpty ? nil : $0 } ?? "attributes.start_time DESC"
            let pageNumber = max(1, try q.int("page") ?? 1)
            // Beyond this the run offset would overflow; no experiment has that many pages.
            guard pageNumber <= 1_000_000 else { throw LoomError.invalidParameter("page must be at most 1000000") }
            let view: ViewType = q["view"] == "deleted" ? .deletedOnly : q["view"] == "all" ? .all : .activeOnly
            let metricKeys = try await services.store.metricKeys(experimentIDs: [id])
            let paramKeys = try await services.store.paramKeys(experimentIDs: [id])
            let chosen = q.all("col")
            let metricCols = chosen.isEmpty ? Array(metricKeys.prefix(6)) : chosen.filter { $0.hasPrefix("metrics.") }.map { String($0.dropFirst(8)) }.filter(metricKeys.contains)
            let paramCols = chosen.isEmpty ? Array(paramKeys.prefix(4)) : chosen.filter { $0.hasPrefix("params.") }.map { String($0.dropFirst(7)) }.filter(paramKeys.contains)
            let page: Page<Run>
            var filterError: String?
            do {
                page = try await tracking.searchRuns(
                    experimentIDs: [id], filter: filter.isEmpty ? nil : filter, viewType: view, maxResults: Self.pageSize, orderBy: [order],
                    pageToken: pageNumber > 1 ? PageToken.encode(offset: (pageNumber - 1) * Self.pageSize) : nil)
            } catch let e as LoomError where e.code == .invalidParameter {
                filterError = e.message
                page = Page(items: [], nextPageToken: nil)
            }
            let total = filter.isEmpty ? try await services.store.countRuns(experimentIDs: [id], viewType: view) : nil

            func link(page p: Int? = nil, order o: String? = nil) -> String {
                var parts: [String] = []
                if !filter.isEmpty { parts.append("filter=\(HTML.url(filter))") }
                parts.append("order=\(HTML.url(o ?? order))")
                if view != .activeOnly { parts.append("view=\(view == .all ? "all" : "deleted")") }
                for c in chosen { parts.append("col=\(HTML.url(c))") }
                if let p, p > 1 { parts.append("page=\(p)") }
                return "/experiments/\(HTML.url(id))?" + parts.joined(separator: "&")
            }
            func header(_ label: String, _ key: String) -> String {
                let current = order.lowercased()
                let asc = current == "\(key) asc".lowercased() || current == key.lowercased()
                let desc = current == "\(key) desc".lowercased()
                let next = desc ? "\(key) ASC" : "\(key) DESC"
                let arrow = desc ? " ▼" : asc ? " ▲" : ""
                return "<th class=\"sortable\"><a href=\"\(HTML.escape(link(order: next)))\" data-sort=\"\(HTML.escape(key))\">\(HTML.escape(label))\(arrow)</a></th>"
            }
            var head = "<th><input type=\"checkbox\" id=\"select-all\" aria-label=\"select all\"></th>"
            head += header("Run", "attributes.run_name") + header("Started", "attributes.start_time") + header("Status", "attributes.status") + "<th>Duration</th>"
            for k in metricCols { head += header(k, "metrics.`\(k)`") }
            for k in paramCols { head += header(k, "params.`\(k)`") }
            var rows = ""
            for run in page.items {
                let metrics = Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                let params = Dictionary(run.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                rows += "<tr data-run=\"\(HTML.escape(run.info.runID))\"><td><input type=\"checkbox\" name=\"runs\" value=\"\(HTML.escape(run.info.runID))\"></td>"
                rows += "<td><a href=\"/runs/\(HTML.url(run.info.runID))\">\(HTML.escape(run.info.runName))</a></td><td>\(HTML.time(run.info.startTime))</td>"
                rows += "<td><span class=\"status \(run.info.status.rawValue.lowercased())\">\(run.info.status.rawValue)</span></td><td>\(HTML.duration(run.info.startTime, run.info.endTime))</td>"
                for k in metricCols { rows += "<td class=\"num\" data-key=\"metrics.\(HTML.escape(k))\">\(metrics[k].map(HTML.number) ?? "")</td>" }
                for k in paramCols { rows += "<td data-key=\"params.\(HTML.escape(k))\">\(HTML.escape(params[k] ?? ""))</td>" }
                rows += "</tr>"
            }
            let first = (pageNumber - 1) * Self.pageSize + 1
            let last = first + page.items.count - 1
            var pager = page.items.isEmpty ? "No runs." : "Runs \(first)–\(last)\(total.map { " of \($0)" } ?? "")"
            if pageNumber > 1 { pager += " · <a rel=\"prev\" href=\"\(HTML.escape(link(page: pageNumber - 1)))\">← Previous</a>" }
            if page.nextPageToken != nil { pager += " · <a rel=\"next\" href=\"\(HTML.escape(link(page: pageNumber + 1)))\">Next →</a>" }
            var picker = ""
            for k in metricKeys { picker += "<label><input type=\"checkbox\" name=\"col\" value=\"metrics.\(HTML.escape(k))\"\(metricCols.contains(k) ? " checked" : "")> \(HTML.escape(k))</label>" }
            for k in paramKeys { picker += "<label><input type=\"checkbox\" name=\"col\" value=\"params.\(HTML.escape(k))\"\(paramCols.contains(k) ? " checked" : "")> param \(HTML.escape(k))</label>" }
            let tags = experiment.tags.filter { !$0.key.hasPrefix("mlflow.") }.map { "<span class=\"tag\">\(HTML.escape($0.key))=\(HTML.escape($0.value))</span>" }.joined(separator: " ")
            let body = """
                <p class="crumbs"><a href="/">Experiments</a> /</p>
                <h1>\(HTML.escape(experiment.name)) <small class="muted">#\(HTML.escape(experiment.id))</small></h1>
                <p class="muted">\(HTML.escape(experiment.artifactLocation)) \(tags)</p>
                <form class="toolbar" method="get" action="/experiments/\(HTML.url(id))">
                <input type="text" name="filter" size="60" placeholder="metrics.acc &gt; 0.9 and params.lr = '0.01'" value="\(HTML.escape(filter))">
                <input type="hidden" name="order" value="\(HTML.escape(order))">
                <select name="view"><option value="active"\(view == .activeOnly ? " selected" : "")>Active</option><option value="deleted"\(view == .deletedOnly ? " selected" : "")>Deleted</option><option value="all"\(view == .all ? " selected" : "")>All</option></select>
                <button type="submit">Search</button>
                <details class="columns"><summary>Columns</summary><div>\(picker.isEmpty ? "<span class=\"muted\">No metrics or params yet.</span>" : picker)</div></details>
                </form>
                \(filterError.map { "<p class=\"error\" id=\"filter-error\">\(HTML.escape($0))</p>" } ?? "")
                <form method="get" action="/compare" id="compare-form">
                <p class="pager" id="pager">\(pager) <button type="submit" id="compare" disabled>Compare selected</button></p>
                <table class="grid" id="runs"><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table>
                </form>
                """
            return HTML.page(title: experiment.name, active: "experiments", body: body)
        }
    }

    // MARK: Runs

    func metricChart(runID: String, key: String) async throws -> String {
        let history = try await tracking.metricHistoryBulkInterval(runIDs: [runID], key: key, startStep: nil, endStep: nil, maxResults: 2500)
        let points = Downsampling.lttb(history.map { (x: Double($0.step), y: $0.value) }, threshold: 400)
        return SVGChart(title: key, series: [.init(label: key, points: points)]).render()
    }

    func runPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let id = try Self.param(context, "run_id")
            let run = try await tracking.run(id: id)
            try await auth.requireExperiment(context, run.info.experimentID, .read)
            let experiment = try await tracking.experiment(id: run.info.experimentID)
            let i = run.info
            var charts = ""
            for m in run.metrics.prefix(24) {
                charts += "<figure>\(try await metricChart(runID: id, key: m.key))</figure>"
            }
            let params = run.params.map { "<tr><td>\(HTML.escape($0.key))</td><td>\(HTML.escape($0.value))</td></tr>" }.joined()
            let metrics = run.metrics.map { "<tr><td>\(HTML.escape($0.key))</td><td class=\"num\">\(HTML.number($0.value))</td><td class=\"num\">\($0.step)</td></tr>" }.joined()
            let tags = run.tags.map { "<tr><td>\(HTML.escape($0.key))</td><td>\(HTML.escape($0.value))</td></tr>" }.joined()
            var artifacts = ""
            if let root = try tracking.runArtifactRoot(i) {
                let path = try ArtifactPath(request.query["path"] ?? "", allowRoot: true)
                for entry in try await tracking.artifacts.list(root.appending(path)) {
                    let rel = try ArtifactPath(entry.path, allowRoot: true).relative(to: root).string
                    if entry.isDirectory {
                        artifacts += "<li>📁 <a href=\"/runs/\(HTML.url(id))?path=\(HTML.url(rel))#artifacts\">\(HTML.escape(rel))/</a></li>"
                    } else {
                        artifacts += "<li><a href=\"/api/v1/runs/\(HTML.url(id))/artifacts/\(rel.split(separator: "/").map { HTML.url(String($0)) }.joined(separator: "/"))\">\(HTML.escape(rel))</a> <span class=\"muted\">\(entry.size ?? 0) bytes</span></li>"
                    }
                }
            }
            // Plots that `loom train` drew (evaluation/*.svg), shown as images.
            var plots = ""
            if let root = try tracking.runArtifactRoot(i) {
                for entry in try await tracking.artifacts.list(try root.appending("evaluation")) where !entry.isDirectory {
                    let name = try ArtifactPath(entry.path, allowRoot: true).name
                    guard Self.isPlotName(name) else { continue }
                    plots += "<figure><img src=\"/runs/\(HTML.url(id))/plots/\(HTML.url(name))\" alt=\"\(HTML.escape(name))\" width=\"480\" height=\"400\"><figcaption class=\"muted\">\(HTML.escape(name))</figcaption></figure>"
                }
            }
            let datasets = run.datasetInputs.map { d in
                "<li>\(HTML.escape(d.dataset.name)) <span class=\"muted\">digest \(HTML.escape(d.dataset.digest))\(d.tags.first { $0.key == "mlflow.data.context" }.map { " · " + HTML.escape($0.value) } ?? "")</span></li>"
            }.joined()
            let body = """
                <p class="crumbs"><a href="/">Experiments</a> / <a href="/experiments/\(HTML.url(experiment.id))">\(HTML.escape(experiment.name))</a> /</p>
                <h1 id="run-name">\(HTML.escape(i.runName))</h1>
                <dl class="facts">
                <dt>Run ID</dt><dd><code>\(HTML.escape(i.runID))</code></dd>
                <dt>Status</dt><dd><span class="status \(i.status.rawValue.lowercased())">\(i.status.rawValue)</span>\(i.lifecycleStage == .deleted ? " <span class=\"tag\">deleted</span>" : "")</dd>
                <dt>Started</dt><dd>\(HTML.time(i.startTime))</dd><dt>Duration</dt><dd>\(HTML.duration(i.startTime, i.endTime))</dd>
                <dt>User</dt><dd>\(HTML.escape(i.userID))</dd><dt>Artifacts</dt><dd><code>\(HTML.escape(i.artifactURI))</code></dd>
                </dl>
                <section><h2>Metrics</h2><div class="charts" id="charts">\(charts.isEmpty ? "<p class=\"muted\">No metrics.</p>" : charts)</div>
                <table class="grid" id="metrics"><thead><tr><th>Metric</th><th>Latest</th><th>Step</th></tr></thead><tbody>\(metrics)</tbody></table></section>
                <section class="cols"><div><h2>Parameters</h2><table class="grid" id="params"><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>\(params)</tbody></table></div>
                <div><h2>Tags</h2><table class="grid" id="tags"><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>\(tags)</tbody></table></div></section>
                \(plots.isEmpty ? "" : "<section id=\"evaluation\"><h2>Evaluation</h2><div class=\"charts\">\(plots)</div></section>")
                \(datasets.isEmpty ? "" : "<section><h2>Datasets</h2><ul>\(datasets)</ul></section>")
                <section id="artifacts"><h2>Artifacts</h2><ul class="files">\(artifacts.isEmpty ? "<li class=\"muted\">No artifacts.</li>" : artifacts)</ul></section>
                """
            return HTML.page(title: i.runName, active: "experiments", body: body)
        }
    }

    /// Names of evaluation plots the run page shows: lowercase words and `.svg`.
    static func isPlotName(_ name: String) -> Bool {
        name.hasSuffix(".svg") && name.count <= 64 && name.dropLast(4).allSatisfy { ("a"..."z").contains($0) || $0 == "_" || $0 == "-" } && name.count > 4
    }

    /// An evaluation plot of a run as an image. An SVG artifact is anyone's upload, so it is
    /// served with a policy that runs no script and loads nothing, even when opened directly.
    func runPlot(_ request: Request, _ context: Context) async throws -> Response {
        let id = try Self.param(context, "run_id")
        let name = try Self.param(context, "name")
        guard Self.isPlotName(name) else { throw LoomError.notFound("No plot named \(name)") }
        let run = try await tracking.run(id: id)
        try await auth.requireExperiment(context, run.info.experimentID, .read)
        guard let root = try tracking.runArtifactRoot(run.info) else { throw LoomError.notFound("No plot named \(name)") }
        let path = try root.appending("evaluation/\(name)")
        guard try await tracking.artifacts.fileSize(path) != nil else { throw LoomError.notFound("No plot named \(name)") }
        let bytes = try await tracking.artifacts.readAll(path, limit: 8 << 20)
        var headers = HTTPFields()
        headers[.contentType] = "image/svg+xml"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func comparePage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            var ids: [String] = []
            for raw in request.query.all("runs") {
                for part in raw.split(separator: ",") where !ids.contains(String(part)) { ids.append(String(part)) }
            }
            guard ids.count >= 1 else { throw LoomError.invalidParameter("Choose at least one run to compare") }
            guard ids.count <= 10 else { throw LoomError.invalidParameter("Compare at most 10 runs at a time") }
            var runs: [Run] = []
            for id in ids {
                let run = try await tracking.run(id: id)
                try await auth.requireExperiment(context, run.info.experimentID, .read)
                runs.append(run)
            }
            let paramKeys = Array(Set(runs.flatMap { $0.params.map(\.key) })).sorted()
            let metricKeys = Array(Set(runs.flatMap { $0.metrics.map(\.key) })).sorted()
            var head = "<th></th>"
            for r in runs { head += "<th><a href=\"/runs/\(HTML.url(r.info.runID))\">\(HTML.escape(r.info.runName))</a></th>" }
            var rows = ""
            for k in paramKeys {
                let values = runs.map { r in r.params.first { $0.key == k }?.value ?? "" }
                let differs = Set(values).count > 1
                rows += "<tr class=\"\(differs ? "diff" : "")\"><th>param \(HTML.escape(k))</th>" + values.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>"
            }
            for k in metricKeys {
                let values = runs.map { r in r.metrics.first { $0.key == k }.map { HTML.number($0.value) } ?? "" }
                let differs = Set(values).count > 1
                rows += "<tr class=\"\(differs ? "diff" : "")\"><th>\(HTML.escape(k))</th>" + values.map { "<td class=\"num\">\($0)</td>" }.joined() + "</tr>"
            }
            var charts = ""
            for k in metricKeys.prefix(12) {
                var series: [SVGChart.Series] = []
                for r in runs where r.metrics.contains(where: { $0.key == k }) {
                    let h = try await tracking.metricHistoryBulkInterval(runIDs: [r.info.runID], key: k, startStep: nil, endStep: nil, maxResults: 2500)
                    series.append(.init(label: r.info.runName, points: Downsampling.lttb(h.map { (x: Double($0.step), y: $0.value) }, threshold: 300)))
                }
                charts += "<figure>\(SVGChart(title: k, series: series).render())</figure>"
            }
            let body = """
                <h1>Compare \(runs.count) runs</h1>
                <table class="grid compare" id="compare-table"><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table>
                <div class="charts" id="charts">\(charts)</div>
                """
            return HTML.page(title: "Compare runs", active: "experiments", body: body)
        }
    }

    // MARK: Models

    func modelList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let q = request.query
            let prompts = q["kind"] == "prompts"
            let search = (q["q"] ?? "").trimmingCharacters(in: .whitespaces)
            let filter = search.isEmpty ? nil : "name LIKE '%\(search.replacingOccurrences(of: "'", with: "''"))%'"
            let page = try await tracking.searchRegisteredModels(filter: filter, maxResults: 500, orderBy: ["last_updated_timestamp DESC"], pageToken: nil, workspace: context.workspace, prompts: prompts)
            var rows = ""
            for m in page.items where try await auth.canRead(context, model: m.name) {
                let latest = m.latestVersions.compactMap { Int($0.version) }.max().map { "v\($0)" } ?? "–"
                let aliases = m.aliases.map { "<span class=\"tag\">@\(HTML.escape($0.alias)) → v\(HTML.escape($0.version))</span>" }.joined(separator: " ")
                rows += "<tr><td><a href=\"/models/\(HTML.url(m.name))\">\(HTML.escape(m.name))</a></td><td>\(latest)</td><td>\(aliases)</td><td>\(HTML.time(m.lastUpdatedTimestamp))</td><td>\(HTML.escape(m.description ?? ""))</td></tr>"
            }
            let body = """
                <h1>\(prompts ? "Prompts" : "Registered models")</h1>
                <form class="toolbar" method="get" action="/models"><input type="search" name="q" placeholder="Filter by name" value="\(HTML.escape(search))">
                <select name="kind"><option value="models"\(prompts ? "" : " selected")>Models</option><option value="prompts"\(prompts ? " selected" : "")>Prompts</option></select>
                <button type="submit">Search</button></form>
                <table class="grid" id="models"><thead><tr><th>Name</th><th>Latest</th><th>Aliases</th><th>Last updated</th><th>Description</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">Nothing registered yet.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Models", active: "models", body: body)
        }
    }

    func modelPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            let model = try await tracking.registeredModel(name: name, workspace: context.workspace)
            try await auth.requireModel(context, name, .read)
            let versions = try await services.store.searchModelVersions(EntitySearch(
                filter: [SearchClause(entity: .attribute, key: "name", comparator: .equal, value: .string(name))],
                orderBy: [SearchOrder(entity: .attribute, key: "version_number", ascending: false)], maxResults: 1000, workspace: context.workspace))
            var rows = ""
            for v in versions.items {
                let run = v.runID.map { "<a href=\"/runs/\(HTML.url($0))\">\(HTML.escape(String($0.prefix(8))))</a>" } ?? "–"
                let aliases = v.aliases.map { "<span class=\"tag\">@\(HTML.escape($0))</span>" }.joined(separator: " ")
                let tags = v.tags.filter { !$0.key.hasPrefix("mlflow.") && !$0.key.hasPrefix("_mlflow") }.map { "<span class=\"tag\">\(HTML.escape($0.key))=\(HTML.escape(String($0.value.prefix(40))))</span>" }.joined(separator: " ")
                rows += "<tr><td>v\(HTML.escape(v.version))</td><td>\(aliases)</td><td>\(v.currentStage == .none ? "" : HTML.escape(v.currentStage.rawValue))</td><td>\(run)</td><td class=\"muted\">\(HTML.escape(v.source))</td><td>\(HTML.time(v.creationTimestamp))</td><td>\(tags)</td><td><a href=\"/lineage?node=\(HTML.url("model:\(name)/\(v.version)"))\">lineage</a></td></tr>"
            }
            let prompt = model.tags.contains { $0.key == "mlflow.prompt.is_prompt" && $0.value == "true" }
            var template = ""
            if prompt, let newest = versions.items.first, let text = newest.tags.first(where: { $0.key == "mlflow.prompt.text" })?.value {
                template = "<section><h2>Template (v\(HTML.escape(newest.version)))</h2><pre class=\"template\">\(HTML.escape(text))</pre></section>"
            }
            let tags = model.tags.filter { !$0.key.hasPrefix("mlflow.") && !$0.key.hasPrefix("_mlflow") }.map { "<span class=\"tag\">\(HTML.escape($0.key))=\(HTML.escape($0.value))</span>" }.joined(separator: " ")
            let body = """
                <p class="crumbs"><a href="/models\(prompt ? "?kind=prompts" : "")">\(prompt ? "Prompts" : "Models")</a> /</p>
                <h1 id="model-name">\(HTML.escape(model.name))</h1>
                <p>\(HTML.escape(model.description ?? ""))</p><p>\(tags)</p>
                \(template)
                <table class="grid" id="versions"><thead><tr><th>Version</th><th>Aliases</th><th>Stage</th><th>Run</th><th>Source</th><th>Created</th><th>Tags</th><th>Lineage</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No versions.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: model.name, active: "models", body: body)
        }
    }
}
