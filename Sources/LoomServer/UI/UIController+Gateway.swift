import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomStore
import LoomTracking

/// The gateway's pages (docs/gateway.md): routes, providers and policies with today's usage,
/// usage over days, traces and one trace's spans, the model catalog, and prompts with diffs.
extension UIController {
    func addGatewayRoutes(to routes: Routes) {
        routes.get("/gateway") { request, context in try await gatewayPage(request, context) }
        routes.get("/gateway/usage") { request, context in try await usagePage(request, context) }
        routes.get("/gateway/traces") { request, context in try await tracesPage(request, context) }
        routes.get("/gateway/traces/:id") { request, context in try await tracePage(request, context) }
        routes.get("/catalog") { request, context in try await catalogPage(request, context) }
        routes.get("/prompts") { request, context in try await promptList(request, context) }
        routes.get("/prompts/:name") { request, context in try await promptPage(request, context) }
    }

    static func money(_ v: Double) -> String { v == 0 ? "0" : String(format: v < 0.01 ? "%.6f" : "%.4f", v) }

    static func targets(_ list: [RouteSpec.Target], weighted: Bool) -> String {
        list.map { HTML.escape("\($0.provider)/\($0.model)") + (weighted && list.count > 1 ? " <span class=\"muted\">\($0.weight)</span>" : "") }
            .joined(separator: "<br>")
    }

    /// Routes with today's requests, errors, tokens and cost; providers and whether their keys
    /// can be read; policies.
    func gatewayPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let gateway = services.gateway.gateway
            let resources = try await services.store.gatewayResources(workspace: context.workspace, kind: nil)
            let today = UTCDay.string(millis: Clock.nowMillis())
            var byRoute: [String: GatewayUsage] = [:]
            for u in try await gateway.usage(workspace: context.workspace, fromDay: today, toDay: today) {
                byRoute[u.route, default: GatewayUsage(day: today, route: u.route, provider: "", model: "")].add(u)
            }
            var routeRows = ""
            for r in resources where r.kind == .route {
                guard let spec = try? RouteSpec.parse(yaml: r.specText) else { continue }
                let u = byRoute[spec.name]
                var extras: [String] = []
                if let p = spec.prompt { extras.append("prompt <a href=\"/prompts/\(HTML.url(p.name))\">\(HTML.escape(p.description))</a>") }
                if !spec.policies.isEmpty { extras.append("policies " + HTML.escape(spec.policies.joined(separator: ", "))) }
                if let c = spec.cache { extras.append("cache \(Int(c.ttl))s") }
                if let rpm = spec.limits.requestsPerMinute { extras.append("\(rpm) req/min") }
                if let tpm = spec.limits.tokensPerMinute { extras.append("\(tpm) tokens/min") }
                if let spend = spec.limits.spendPerDay { extras.append("\(Self.money(spend))/day") }
                routeRows += """
                    <tr><td><a href="/gateway/traces?route=\(HTML.url(spec.name))">\(HTML.escape(spec.name))</a></td><td>\(spec.task.rawValue)</td>\
                    <td>\(Self.targets(spec.targets, weighted: true))</td><td>\(spec.fallbacks.isEmpty ? "–" : Self.targets(spec.fallbacks, weighted: false))</td>\
                    <td>\(extras.joined(separator: "<br>"))</td><td class="num">\(u?.requests ?? 0)</td><td class="num">\(u?.errors ?? 0)</td>\
                    <td class="num">\((u?.promptTokens ?? 0) + (u?.completionTokens ?? 0))</td><td class="num">\(Self.money(u?.cost ?? 0))</td></tr>
                    """
            }
            let problems = gateway.providerProblems(workspace: context.workspace)
            var providerRows = ""
            for r in resources where r.kind == .provider {
                guard let spec = try? ProviderSpec.parse(yaml: r.specText) else { continue }
                let key = spec.apiKeyEnv.map { "env " + $0 } ?? spec.apiKeySecret.map { "secret " + $0 } ?? "none"
                let state = problems[spec.name].map { "<span class=\"error\">\(HTML.escape($0))</span>" } ?? Self.stateTag("ready")
                providerRows += """
                    <tr><td>\(HTML.escape(spec.name))</td><td>\(spec.kind.rawValue)</td><td><code>\(HTML.escape(spec.baseURL))</code></td>\
                    <td>\(HTML.escape(key))</td><td>\(state)</td></tr>
                    """
            }
            var policyRows = ""
            for r in resources where r.kind == .policy {
                guard let spec = try? PolicySpec.parse(yaml: r.specText) else { continue }
                let rules = spec.rules.map { "\($0.check.name) → \($0.action.rawValue) (\($0.stages.map(\.rawValue).sorted().joined(separator: ", ")))" }
                policyRows += "<tr><td>\(HTML.escape(spec.name))</td><td>\(HTML.escape(rules.joined(separator: "; ")))</td><td class=\"num\">\(r.version)</td></tr>"
            }
            let body = """
                <h1>Gateway</h1>
                <p class="muted">OpenAI-compatible at <code>/v1</code>: set the client's <code>base_url</code> to this server's <code>/v1</code>. \
                <a href="/gateway/usage">Usage</a> · <a href="/gateway/traces">Traces</a> · <a href="/catalog">Catalog</a> · <a href="/prompts">Prompts</a></p>
                <h2>Routes <span class="muted">(today, UTC)</span></h2>
                <table class="grid" id="routes"><thead><tr><th>Route</th><th>Task</th><th>Targets</th><th>Fallbacks</th><th>Settings</th><th>Requests</th><th>Errors</th><th>Tokens</th><th>Cost</th></tr></thead>
                <tbody>\(routeRows.isEmpty ? "<tr><td colspan=\"9\" class=\"muted\">No routes yet: <code>loom apply -f route.yaml</code> (<code>kind: route</code>).</td></tr>" : routeRows)</tbody></table>
                <h2>Providers</h2>
                <table class="grid" id="providers"><thead><tr><th>Name</th><th>Type</th><th>Base URL</th><th>Key from</th><th>State</th></tr></thead>
                <tbody>\(providerRows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No providers yet (<code>kind: provider</code>).</td></tr>" : providerRows)</tbody></table>
                <h2>Safety policies</h2>
                <table class="grid" id="policies"><thead><tr><th>Name</th><th>Rules</th><th>Version</th></tr></thead>
                <tbody>\(policyRows.isEmpty ? "<tr><td colspan=\"3\" class=\"muted\">No policies (<code>kind: policy</code>).</td></tr>" : policyRows)</tbody></table>
                """
            return HTML.page(title: "Gateway", active: "gateway", body: body)
        }
    }

    /// Usage over days (default the last 14): requests and cost per day as charts, then the sums
    /// per day, route and model.
    func usagePage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let now = Clock.nowMillis()
            let to = request.uri.queryParameters["to"].map(String.init) ?? UTCDay.string(millis: now)
            let from = request.uri.queryParameters["from"].map(String.init) ?? UTCDay.string(millis: now - 13 * 86_400_000)
            for d in [from, to] where !Self.isDay(d) { throw LoomError.invalidParameter("Days are YYYY-MM-DD, not \(d)") }
            let rows = try await services.gateway.gateway.usage(workspace: context.workspace, fromDay: from, toDay: to)
            var perDay: [String: GatewayUsage] = [:]
            for u in rows { perDay[u.day, default: GatewayUsage(day: u.day, route: "", provider: "", model: "")].add(u) }
            let days = perDay.keys.sorted()
            let x = { (day: String) -> Double in Double(days.firstIndex(of: day) ?? 0) }
            let requests = SVGChart(title: "requests per day", series: [.init(label: "requests", points: days.map { (x($0), Double(perDay[$0]!.requests)) })])
            let cost = SVGChart(title: "cost per day", series: [.init(label: "cost", points: days.map { (x($0), perDay[$0]!.cost) })])
            var table = ""
            var total = GatewayUsage(day: "", route: "", provider: "", model: "")
            var grouped: [String: GatewayUsage] = [:]
            for u in rows {
                let key = [u.day, u.route, u.provider, u.model].joined(separator: "\u{1F}")
                grouped[key, default: GatewayUsage(day: u.day, route: u.route, provider: u.provider, model: u.model)].add(u)
                total.add(u)
            }
            for key in grouped.keys.sorted(by: >) {
                let u = grouped[key]!
                table += """
                    <tr><td>\(u.day)</td><td>\(HTML.escape(u.route))</td><td>\(HTML.escape(u.provider + "/" + u.model))</td><td class="num">\(u.requests)</td>\
                    <td class="num">\(u.errors)</td><td class="num">\(u.cached)</td><td class="num">\(u.promptTokens)</td><td class="num">\(u.completionTokens)</td>\
                    <td class="num">\(Self.money(u.cost))</td></tr>
                    """
            }
            let body = """
                <h1>Gateway usage</h1>
                <form method="get" class="filters">From <input name="from" value="\(HTML.escape(from))" size="10"> to <input name="to" value="\(HTML.escape(to))" size="10"> <button>Show</button></form>
                <p>\(total.requests) requests, \(total.errors) errors, \(total.cached) from the cache, \(total.promptTokens + total.completionTokens) tokens, cost \(Self.money(total.cost)).</p>
                \(days.count > 1 ? "<div class=\"charts\"><figure>\(requests.render())</figure><figure>\(cost.render())</figure></div>" : "")
                <table class="grid" id="usage"><thead><tr><th>Day</th><th>Route</th><th>Provider model</th><th>Requests</th><th>Errors</th><th>Cached</th><th>Prompt tokens</th><th>Completion tokens</th><th>Cost</th></tr></thead>
                <tbody>\(table.isEmpty ? "<tr><td colspan=\"9\" class=\"muted\">No calls in these days.</td></tr>" : table)</tbody></table>
                """
            return HTML.page(title: "Gateway usage", active: "gateway", body: body)
        }
    }

    static func isDay(_ s: String) -> Bool {
        s.count == 10 && s.enumerated().allSatisfy { i, c in i == 4 || i == 7 ? c == "-" : c.isASCII && c.isNumber }
    }

    /// Traces, newest first, filtered by route and failures, paged by start time.
    func tracesPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let route = request.uri.queryParameters["route"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let failed = request.uri.queryParameters["failed"] == "true"
            let before = try request.uri.queryParameters["before"].map { raw -> Millis in
                guard let v = Millis(raw), v > 0 else { throw LoomError.invalidParameter("before is a time in Unix milliseconds") }
                return v
            }
            await services.gateway.gateway.flushUsage()
            let list = try await services.store.gatewayTraces(workspace: context.workspace, route: route, failedOnly: failed, before: before, limit: Self.pageSize)
            var rows = ""
            for t in list {
                let status = t.status >= 400 ? "<span class=\"error\">\(t.status)</span>" : "\(t.status)"
                rows += """
                    <tr><td><a href="/gateway/traces/\(HTML.url(t.id))">\(HTML.time(t.startTime))</a></td><td>\(HTML.escape(t.route))</td>\
                    <td>\(HTML.escape([t.provider, t.model].compactMap { $0 }.joined(separator: "/")))</td><td class="num">\(status)</td>\
                    <td class="num">\(String(format: "%.1f", Double(t.durationMicros) / 1000)) ms</td><td class="num">\(t.promptTokens + t.completionTokens)</td>\
                    <td class="num">\(Self.money(t.cost))</td><td>\(HTML.escape(String(t.output.prefix(80))))</td></tr>
                    """
            }
            var query = [String]()
            if let route { query.append("route=" + HTML.url(route)) }
            if failed { query.append("failed=true") }
            let next = list.count == Self.pageSize ? list.last.map { "<p><a href=\"/gateway/traces?\((query + ["before=\($0.startTime)"]).joined(separator: "&amp;"))\">Older</a></p>" } ?? "" : ""
            let body = """
                <h1>Gateway traces</h1>
                <form method="get" class="filters">Route <input name="route" value="\(HTML.escape(route ?? ""))" size="16"> \
                <label><input type="checkbox" name="failed" value="true"\(failed ? " checked" : "")> failed only</label> <button>Show</button></form>
                <table class="grid" id="traces"><thead><tr><th>Time</th><th>Route</th><th>Answered by</th><th>Status</th><th>Latency</th><th>Tokens</th><th>Cost</th><th>Output</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No traces.</td></tr>" : rows)</tbody></table>
                \(next)
                """
            return HTML.page(title: "Gateway traces", active: "gateway", body: body)
        }
    }

    /// One call: its summary, its spans as a waterfall, its input and output (after policies).
    func tracePage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .viewer)
            await services.gateway.gateway.flushUsage()
            guard let t = try await services.store.gatewayTrace(id: id, workspace: context.workspace) else {
                throw LoomError.notFound("No gateway trace \(id)")
            }
            let spans = (try? JSONValue.parse(Array(t.spansJSON.utf8)))?.arrayValue ?? []
            let total = max(Double(t.durationMicros), 1)
            var waterfall = ""
            for s in spans {
                let start = s["start_us"]?.doubleValue ?? 0, duration = s["duration_us"]?.doubleValue ?? 0
                let left = min(start / total * 100, 100), width = max(min(duration / total * 100, 100 - left), 0.5)
                let attributes = (s["attributes"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { k, v in
                    "\(k)=\(v.stringValue ?? v.jsonString)"
                }.joined(separator: ", ")
                waterfall += """
                    <tr><td>\(HTML.escape(s["name"]?.stringValue ?? "?"))</td><td class="num">\(String(format: "%.2f", start / 1000))</td>\
                    <td class="num">\(String(format: "%.2f", duration / 1000))</td>\
                    <td class="bar"><span style="margin-left:\(String(format: "%.1f", left))%;width:\(String(format: "%.1f", width))%"></span></td>\
                    <td>\(HTML.escape(attributes))</td></tr>
                    """
            }
            let body = """
                <h1>Trace <code>\(HTML.escape(t.id))</code></h1>
                <table class="kv">
                <tr><th>Route</th><td><a href="/gateway/traces?route=\(HTML.url(t.route))">\(HTML.escape(t.route))</a> (\(HTML.escape(t.task))\(t.stream ? ", streamed" : ""))</td></tr>
                <tr><th>Answered by</th><td>\(HTML.escape([t.provider, t.model].compactMap { $0 }.joined(separator: "/")))</td></tr>
                <tr><th>Status</th><td>\(t.status)\(t.error.map { " <span class=\"error\">\(HTML.escape($0))</span>" } ?? "")</td></tr>
                <tr><th>Started</th><td>\(HTML.time(t.startTime))</td></tr>
                <tr><th>Latency</th><td>\(String(format: "%.2f", Double(t.durationMicros) / 1000)) ms</td></tr>
                <tr><th>Tokens</th><td>\(t.promptTokens) prompt, \(t.completionTokens) completion</td></tr>
                <tr><th>Cost</th><td>\(Self.money(t.cost))</td></tr>
                <tr><th>Gateway key</th><td>\(t.key.isEmpty ? "–" : HTML.escape(t.key))</td></tr>
                </table>
                <h2>Spans</h2>
                <table class="grid waterfall" id="spans"><thead><tr><th>Step</th><th>Start (ms)</th><th>Duration (ms)</th><th></th><th>Attributes</th></tr></thead>
                <tbody>\(waterfall)</tbody></table>
                <h2>Input</h2><pre class="text">\(HTML.escape(t.input))</pre>
                <h2>Output</h2><pre class="text">\(HTML.escape(t.output))</pre>
                """
            return HTML.page(title: "Trace \(t.id)", active: "gateway", body: body)
        }
    }

    /// The model catalog, deprecated entries flagged.
    func catalogPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            var rows = ""
            for m in try await services.store.catalogModels(workspace: context.workspace, provider: nil) {
                let status = m.isDeprecated ? "<span class=\"error\">\(HTML.escape(m.status))\(m.deprecationDate.map { " (retires \(HTML.escape($0)))" } ?? "")</span>" : HTML.escape(m.status)
                rows += """
                    <tr><td>\(HTML.escape(m.provider))</td><td>\(HTML.escape(m.model))</td><td>\(HTML.escape(m.capabilities.joined(separator: ", ")))</td>\
                    <td class="num">\(m.contextLength.map(String.init) ?? "–")</td><td class="num">\(m.inputPrice.map { HTML.number($0) } ?? "–")</td>\
                    <td class="num">\(m.outputPrice.map { HTML.number($0) } ?? "–")</td><td>\(HTML.escape(m.license ?? "–"))</td><td>\(status)</td>\
                    <td>\(HTML.escape(m.source))</td><td>\(HTML.escape(m.description))</td></tr>
                    """
            }
            let body = """
                <h1>Model catalog</h1>
                <p class="muted">Prices per million tokens. <code>loom catalog sync</code> reads providers' listings; <code>loom catalog set</code> edits an entry.</p>
                <table class="grid" id="catalog"><thead><tr><th>Provider</th><th>Model</th><th>Capabilities</th><th>Context</th><th>Input price</th><th>Output price</th><th>License</th><th>Status</th><th>Source</th><th>Description</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"10\" class=\"muted\">The catalog is empty.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Model catalog", active: "gateway", body: body)
        }
    }

    func promptList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let prompts = services.gateway.prompts
            let page = try await tracking.searchRegisteredModels(
                filter: nil, maxResults: 1000, orderBy: ["name ASC"], pageToken: nil, workspace: context.workspace, prompts: true)
            var rows = ""
            for model in page.items {
                let versions = (try? await prompts.prompt(name: model.name, workspace: context.workspace).1) ?? []
                let aliases = model.aliases.sorted { $0.alias < $1.alias }.map { "\($0.alias) → \($0.version)" }.joined(separator: ", ")
                rows += """
                    <tr><td><a href="/prompts/\(HTML.url(model.name))">\(HTML.escape(model.name))</a></td><td class="num">\(versions.first?.version.version ?? "–")</td>\
                    <td>\(HTML.escape(aliases))</td><td>\(HTML.escape(versions.first?.version.description ?? ""))</td><td>\(HTML.time(model.lastUpdatedTimestamp))</td></tr>
                    """
            }
            let body = """
                <h1>Prompts</h1>
                <table class="grid" id="prompts"><thead><tr><th>Name</th><th>Latest</th><th>Aliases</th><th>Latest commit message</th><th>Updated</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No prompts yet: <code>loom prompt create NAME --template '...'</code> or <code>mlflow.genai.register_prompt</code>.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Prompts", active: "prompts", body: body)
        }
    }

    /// A prompt: its versions (newest first) with aliases and templates, and the diff between two
    /// versions (`?from=&to=`; default the latest against the one before).
    func promptPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let (model, versions) = try await services.gateway.prompts.prompt(name: name, workspace: context.workspace)
            func version(_ key: String, _ fallback: PromptService.Version?) throws -> PromptService.Version? {
                guard let raw = request.uri.queryParameters[Substring(key)].map(String.init) else { return fallback }
                guard let v = versions.first(where: { $0.version.version == raw }) else { throw LoomError.notFound("Prompt \(name) has no version \(raw)") }
                return v
            }
            let to = try version("to", versions.first)
            let from = try version("from", versions.first { v in to.map { (Int(v.version.version) ?? 0) < (Int($0.version.version) ?? 0) } ?? false })
            var diffHTML = "<p class=\"muted\">One version: nothing to compare yet.</p>"
            if let from, let to {
                let lines = TextDiff.lines(from.content.readableText, to.content.readableText).map { line -> String in
                    switch line {
                    case .same(let s): return "<span class=\"same\"> \(HTML.escape(s))</span>"
                    case .removed(let s): return "<del>-\(HTML.escape(s))</del>"
                    case .added(let s): return "<ins>+\(HTML.escape(s))</ins>"
                    }
                }
                let keys = Set(from.content.modelConfig.keys).union(to.content.modelConfig.keys).sorted()
                let changes = keys.filter { from.content.modelConfig[$0] != to.content.modelConfig[$0] }.map { k in
                    "<li><code>\(HTML.escape(k))</code>: \(HTML.escape(from.content.modelConfig[k]?.jsonString ?? "–")) → \(HTML.escape(to.content.modelConfig[k]?.jsonString ?? "–"))</li>"
                }
                diffHTML = """
                    <form method="get" class="filters">From <input name="from" value="\(from.version.version)" size="4"> to <input name="to" value="\(to.version.version)" size="4"> <button>Compare</button></form>
                    <pre class="diff" id="diff">\(lines.joined(separator: "\n"))</pre>
                    \(changes.isEmpty ? "" : "<p>Model settings:</p><ul>\(changes.joined())</ul>")
                    """
            }
            var rows = ""
            for v in versions {
                rows += """
                    <tr><td class="num">\(v.version.version)</td><td>\(HTML.escape(v.version.aliases.sorted().joined(separator: ", ")))</td>\
                    <td>\(v.content.isChat ? "chat" : "text")</td><td>\(HTML.escape(v.content.variables.joined(separator: ", ")))</td>\
                    <td>\(HTML.escape(v.version.description ?? ""))</td><td>\(HTML.time(v.version.creationTimestamp))</td>\
                    <td><pre class="text">\(HTML.escape(v.content.readableText))</pre></td></tr>
                    """
            }
            let aliases = model.aliases.sorted { $0.alias < $1.alias }.map { "<code>\(HTML.escape(name))@\(HTML.escape($0.alias))</code> → \($0.version)" }
            let body = """
                <h1>Prompt \(HTML.escape(name))</h1>
                <p>\(aliases.isEmpty ? "No aliases." : "Aliases: " + aliases.joined(separator: ", "))</p>
                <h2>Changes\(from.map { " from version \($0.version.version)" } ?? "")\(to.map { " to \($0.version.version)" } ?? "")</h2>
                \(diffHTML)
                <h2>Versions</h2>
                <table class="grid" id="versions"><thead><tr><th>Version</th><th>Aliases</th><th>Type</th><th>Variables</th><th>Commit message</th><th>Created</th><th>Template</th></tr></thead>
                <tbody>\(rows)</tbody></table>
                """
            return HTML.page(title: "Prompt \(name)", active: "prompts", body: body)
        }
    }
}
