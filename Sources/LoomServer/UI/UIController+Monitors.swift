import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomMonitoring
import LoomStore

extension UIController {
    func addMonitorRoutes(to routes: Routes) {
        routes.get("/monitors") { request, context in try await monitorList(request, context) }
        routes.get("/monitors/:name") { request, context in try await monitorPage(request, context) }
        routes.get("/monitors/:name/passes/:pass/:signal") { request, context in try await driftReport(request, context) }
    }

    func monitorList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let open = try await services.store.monitorAlerts(workspace: context.workspace, monitor: nil, state: .open, limit: 1000)
            var rows = ""
            for m in try await services.store.monitors(workspace: context.workspace) {
                let spec = try? MonitorSpec.parse(yaml: m.specText)
                let alerts = open.filter { $0.monitor == m.name }
                rows += """
                    <tr><td><a href="/monitors/\(HTML.url(m.name))">\(HTML.escape(m.name))</a></td>\
                    <td><a href="/endpoints/\(HTML.url(m.endpoint))">\(HTML.escape(m.endpoint))</a></td>\
                    <td>\(HTML.escape(Self.schedule(spec)))</td><td>\(HTML.escape(spec?.signals.map(\.name).joined(separator: ", ") ?? "?"))</td>\
                    <td>\(HTML.time(m.lastRunTime))</td><td>\(HTML.time(m.nextRunTime))</td>\
                    <td class="num">\(alerts.isEmpty ? "0" : Self.stateTag("open") + " \(alerts.count)")</td></tr>
                    """
            }
            let body = """
                <h1>Monitors</h1>
                <table class="grid" id="monitors"><thead><tr><th>Name</th><th>Endpoint</th><th>Schedule</th><th>Signals</th><th>Last pass</th><th>Next pass</th><th>Open alerts</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No monitors yet: <code>loom apply -f monitor.yaml</code> (<code>kind: monitor</code>).</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Monitors", active: "monitors", body: body)
        }
    }

    static func schedule(_ spec: MonitorSpec?) -> String {
        switch spec?.schedule {
        case .every(let s)?: "every \(s >= 3600 && s.truncatingRemainder(dividingBy: 3600) == 0 ? "\(Int(s / 3600))h" : "\(Int(s / 60))m")"
        case .cron(let c)?: "cron \(c)"
        case nil: "on demand"
        }
    }

    /// A monitor: its signals' values over time (one chart per signal), open and past alerts
    /// with what their actions did, and the latest passes, each drift result linked to its report.
    func monitorPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            guard let m = try await services.store.monitor(name: name, workspace: context.workspace) else {
                throw LoomError.notFound("No monitor named \(name)")
            }
            let spec = try? MonitorSpec.parse(yaml: m.specText)
            let results = try await services.store.monitorResults(monitor: name, workspace: context.workspace, signal: nil, limit: 1000)
            var charts = ""
            for signal in spec?.signals ?? [] {
                let points = results.filter { $0.signal == signal.name && !$0.skipped }.compactMap { r in r.value.map { (x: Double(r.time) / 3_600_000, y: $0) } }
                    .sorted { $0.x < $1.x }
                charts += "<figure>\(SVGChart(title: "\(signal.name) (\(Self.valueName(signal.kind)))", series: [.init(label: signal.name, points: points)]).render())</figure>"
            }
            var alerts = ""
            for a in try await services.store.monitorAlerts(workspace: context.workspace, monitor: name, state: nil, limit: 50) {
                var action = HTML.escape(a.actionMessage ?? (a.actionRunID == nil ? "–" : "running"))
                if let run = a.actionRunID { action = "<a href=\"/pipeline-runs/\(HTML.url(run))\">pipeline run</a> · " + action }
                if let rollout = a.actionRolloutID { action += " · <a href=\"/endpoints/\(HTML.url(m.endpoint))#rollout-\(HTML.escape(rollout))\">rollout</a>" }
                alerts += """
                    <tr><td>\(HTML.time(a.openedTime))</td><td>\(HTML.escape(a.signal))</td><td>\(Self.stateTag(a.state.rawValue))</td>\
                    <td class="num">\(a.count)</td><td>\(HTML.escape(a.summary))</td><td>\(HTML.time(a.resolvedTime))</td><td>\(action)</td></tr>
                    """
            }
            var passes = ""
            for r in results.prefix(60) {
                let verdict = r.skipped ? Self.stateTag("skipped") : Self.stateTag(r.passed ? "passed" : "failed")
                let report = (r.kind == "data_drift" || r.kind == "prediction_drift") && !r.skipped
                    ? "<a href=\"/monitors/\(HTML.url(name))/passes/\(HTML.url(r.passID))/\(HTML.url(r.signal))\">report</a>" : ""
                passes += """
                    <tr><td>\(HTML.time(r.time))</td><td>\(HTML.escape(r.signal))</td><td class="num">\(r.rows)</td>\
                    <td class="num">\(r.value.map(HTML.number) ?? "–")</td><td>\(verdict)</td><td>\(HTML.escape(r.summary))</td><td>\(report)</td></tr>
                    """
            }
            let body = """
                <p class="crumbs"><a href="/monitors">Monitors</a> /</p>
                <h1 id="monitor-name">\(HTML.escape(name))</h1>
                <dl class="facts"><dt>Endpoint</dt><dd><a href="/endpoints/\(HTML.url(m.endpoint))">\(HTML.escape(m.endpoint))</a></dd>\
                <dt>Schedule</dt><dd>\(HTML.escape(Self.schedule(spec)))</dd><dt>Version</dt><dd>\(m.version)</dd>\
                <dt>Last pass</dt><dd>\(HTML.time(m.lastRunTime))</dd><dt>Next pass</dt><dd>\(HTML.time(m.nextRunTime))</dd></dl>
                <h2>Signals over time</h2>
                <div class="charts">\(charts)</div>
                <h2>Alerts</h2>
                <table class="grid" id="alerts"><thead><tr><th>Opened</th><th>Signal</th><th>State</th><th>Passes</th><th>Summary</th><th>Resolved</th><th>Action</th></tr></thead>
                <tbody>\(alerts.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No alerts.</td></tr>" : alerts)</tbody></table>
                <h2>Passes</h2>
                <table class="grid" id="passes"><thead><tr><th>Time</th><th>Signal</th><th>Rows</th><th>Value</th><th>Verdict</th><th>Summary</th><th></th></tr></thead>
                <tbody>\(passes.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No passes yet: <code>loom monitor run \(HTML.escape(name))</code>.</td></tr>" : passes)</tbody></table>
                <h2>Spec</h2>
                <pre>\(HTML.escape(m.specText))</pre>
                """
            return HTML.page(title: name, active: "monitors", body: body)
        }
    }

    static func valueName(_ kind: MonitorSpec.SignalKind) -> String {
        switch kind {
        case .dataDrift, .predictionDrift: "share of drifted columns"
        case .dataQuality: "worst rate"
        case .modelPerformance: "metric"
        case .generationQuality, .generationSafety: "mean score"
        }
    }

    /// The drift report of one pass's signal: the page `loom drift --html` writes, with each
    /// column's distributions as the pass kept them.
    func driftReport(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            let pass = try Self.param(context, "pass")
            let signal = try Self.param(context, "signal")
            try await auth.requireRole(context, .viewer)
            let results = try await services.store.monitorResults(monitor: name, workspace: context.workspace, signal: signal, limit: 1000)
            guard let r = results.first(where: { $0.passID == pass }) else { throw LoomError.notFound("No pass \(pass) of \(name) for \(signal)") }
            guard var drift = try? JSONDecoder().decode(DriftResult.self, from: Data(r.detailJSON.utf8)) else {
                throw LoomError.notFound("Pass \(pass) of \(name) has no drift result for \(signal)")
            }
            struct Plots: Decodable { let distributions: [ColumnDistribution]? }
            drift.distributions = (try? JSONDecoder().decode(Plots.self, from: Data(r.detailJSON.utf8)))?.distributions
            let html = DriftReport.html(
                drift, reference: "the monitor's reference", current: "\(HTML.time(r.windowStart)) to \(HTML.time(r.windowEnd))",
                title: "\(name): \(signal) at \(HTML.time(r.time))")
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            // The report is self-contained (its own inline style); nothing else may load.
            headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }
}
