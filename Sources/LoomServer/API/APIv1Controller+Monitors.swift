import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomMonitoring
import LoomStore

extension APIv1Controller {
    struct MonitorBody: Encodable, Sendable {
        let name: String
        let workspace: String
        let endpoint: String
        let version: Int64
        let enabled: Bool
        let schedule: String?
        let signals: [String]
        let nextRunTime: Millis?
        let lastRunTime: Millis?
        let openAlerts: Int?
        let spec: String?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ m: Monitor, openAlerts: Int?, withSpec: Bool) {
            let spec = try? MonitorSpec.parse(yaml: m.specText)
            (name, workspace, endpoint, version, enabled) = (m.name, m.workspace, m.endpoint, m.version, m.enabled)
            schedule = switch spec?.schedule {
            case .every(let s)?: "every \(Int(s))s"
            case .cron(let c)?: "cron \(c)"
            case nil: nil
            }
            signals = spec?.signals.map(\.name) ?? []
            (nextRunTime, lastRunTime, self.openAlerts) = (m.nextRunTime, m.lastRunTime, openAlerts)
            self.spec = withSpec ? m.specText : nil
            (createdBy, creationTime, lastUpdatedTime) = (m.createdBy, m.creationTime, m.lastUpdatedTime)
        }
    }

    struct ResultBody: Encodable, Sendable {
        let passId: String
        let signal: String
        let kind: String
        let time: Millis
        let windowStart: Millis
        let windowEnd: Millis
        let rows: Int64
        let value: Double?
        let passed: Bool
        let skipped: Bool
        let summary: String
        let detail: JSONValue?

        init(_ r: MonitorResult, detail: Bool) {
            (passId, signal, kind, time, windowStart, windowEnd) = (r.passID, r.signal, r.kind, r.time, r.windowStart, r.windowEnd)
            (rows, value, passed, skipped, summary) = (r.rows, r.value, r.passed, r.skipped, r.summary)
            self.detail = detail ? try? JSONValue.parse(Array(r.detailJSON.utf8)) : nil
        }
    }

    struct AlertBody: Encodable, Sendable {
        let id: String
        let monitor: String
        let signal: String
        let state: String
        let openedTime: Millis
        let resolvedTime: Millis?
        let firstPassId: String
        let lastPassId: String
        let passes: Int64
        let summary: String
        let actionRunId: String?
        let actionRolloutId: String?
        let actionMessage: String?
        let actionDone: Bool

        init(_ a: MonitorAlert) {
            (id, monitor, signal, state, openedTime, resolvedTime) = (a.id, a.monitor, a.signal, a.state.rawValue, a.openedTime, a.resolvedTime)
            (firstPassId, lastPassId, passes, summary, actionRunId) = (a.firstPassID, a.lastPassID, a.count, a.summary, a.actionRunID)
            (actionRolloutId, actionMessage, actionDone) = (a.actionRolloutID, a.actionMessage, a.actionDone)
        }
    }

    struct PassBody: Encodable, Sendable {
        let monitor: String
        let passId: String
        let time: Millis
        let windowStart: Millis
        let windowEnd: Millis
        let rows: Int
        let reference: String
        let referenceRows: Int
        let passed: Bool
        let results: [ResultBody]
        let alertsOpened: [AlertBody]
        let alertsResolved: [AlertBody]
        let alertsContinued: [AlertBody]

        init(_ p: MonitorService.PassReport) {
            (monitor, passId, time, windowStart, windowEnd, rows) = (p.monitor, p.passID, p.time, p.windowStart, p.windowEnd, p.rows)
            (reference, referenceRows) = (p.reference, p.referenceRows)
            passed = p.results.allSatisfy(\.passed)
            results = p.results.map { ResultBody($0, detail: true) }
            alertsOpened = p.alerts.opened.map(AlertBody.init)
            alertsResolved = p.alerts.resolved.map(AlertBody.init)
            alertsContinued = p.alerts.continued.map(AlertBody.init)
        }
    }

    func addMonitorRoutes(to routes: Routes) {
        let p = Self.prefix + "/monitors"
        let monitors = services.monitors
        let store = services.store
        let auth = self.auth
        // Applies a `kind: monitor` spec (YAML, or JSON `{"spec": "YAML"}`), checked whole.
        routes.post(p) { request, context in
            let text = try await Self.specText(request, context)
            try await auth.requireRole(context, .editor)
            let (m, changed, _) = try await monitors.apply(yaml: text, workspace: context.workspace, actor: context.actor.username)
            return try Self.respond(
                AppliedMonitor(monitor: MonitorBody(m, openAlerts: nil, withSpec: false), changed: changed), status: changed && m.version == 1 ? .created : .ok)
        }
        routes.get(p) { _, context in
            try await auth.requireRole(context, .viewer)
            let list = try await store.monitors(workspace: context.workspace)
            let open = try await store.monitorAlerts(workspace: context.workspace, monitor: nil, state: .open, limit: 1000)
            return try Self.respond(Listing(
                items: list.map { m in MonitorBody(m, openAlerts: open.filter { $0.monitor == m.name }.count, withSpec: false) }, nextPageToken: nil))
        }
        routes.get("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            guard let m = try await store.monitor(name: name, workspace: context.workspace) else {
                throw LoomError.notFound("No monitor named \(name) in workspace \(context.workspace)")
            }
            let open = try await store.monitorAlerts(workspace: context.workspace, monitor: name, state: .open, limit: 1000)
            return try Self.respond(MonitorBody(m, openAlerts: open.count, withSpec: true))
        }
        routes.delete("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .editor)
            guard try await store.deleteMonitor(name: name, workspace: context.workspace) else {
                throw LoomError.notFound("No monitor named \(name) in workspace \(context.workspace)")
            }
            return Self.noContent
        }
        // One pass now, whatever the schedule.
        routes.post("\(p)/:name/run") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .editor)
            return try Self.respond(PassBody(try await monitors.runPass(name: name, workspace: context.workspace)))
        }
        routes.get("\(p)/:name/results") { request, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            guard try await store.monitor(name: name, workspace: context.workspace) != nil else {
                throw LoomError.notFound("No monitor named \(name) in workspace \(context.workspace)")
            }
            let signal = request.uri.queryParameters["signal"].map(String.init)
            let detail = request.uri.queryParameters["detail"].map { $0 == "true" } ?? false
            let list = try await store.monitorResults(monitor: name, workspace: context.workspace, signal: signal, limit: try Self.limit(request))
            return try Self.respond(Listing(items: list.map { ResultBody($0, detail: detail) }, nextPageToken: nil))
        }
        routes.get(Self.prefix + "/alerts") { request, context in
            try await auth.requireRole(context, .viewer)
            let state = try request.uri.queryParameters["state"].map { raw in
                guard let s = MonitorAlert.State(rawValue: String(raw)) else { throw LoomError.invalidParameter("state is open or resolved, not \(raw)") }
                return s
            }
            let monitor = request.uri.queryParameters["monitor"].map(String.init)
            let list = try await store.monitorAlerts(workspace: context.workspace, monitor: monitor, state: state, limit: try Self.limit(request))
            return try Self.respond(Listing(items: list.map(AlertBody.init), nextPageToken: nil))
        }
    }

    struct AppliedMonitor: Encodable, Sendable {
        let monitor: MonitorBody
        let changed: Bool
    }

    /// A spec sent as YAML (any content type but JSON) or as `{"spec": "..."}`.
    static func specText(_ request: Request, _ context: Context) async throws -> String {
        if request.headers[.contentType]?.hasPrefix("application/json") == true {
            let body = try await Self.body(request, context)
            guard let text = try body.string("spec") else { throw LoomError.invalidParameter("Give the spec's YAML text as spec") }
            return text
        }
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self), !text.isEmpty else {
            throw LoomError.invalidParameter("The spec must be UTF-8 YAML text")
        }
        return text
    }
}
