import AsyncHTTPClient
import Crypto
import Foundation
import LoomArtifacts
import LoomCore
import LoomData
import LoomGenAI
import LoomMonitoring
import LoomPipelines
import LoomServing
import LoomSpec
import LoomStore
import LoomTracking
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Runs monitors (docs/monitoring.md): applies specs, and makes passes: reads the production
/// window from the endpoint's collected files, the reference (from lineage, a dataset, or an
/// earlier window), labels and the model version's metrics, judges each signal, and records the
/// results with their alerts. Scheduled passes run on whichever replica takes the monitor's lease.
public final class MonitorService: Service, Sendable {
    let tracking: TrackingService
    let logger: Logger
    /// This replica's name for leases.
    let owner: String
    /// How often due monitors and webhook calls are looked for.
    let tickSeconds: Double
    /// The first webhook retry's delay; each next one is three times longer.
    let retrySeconds: Double
    let client: HTTPClient
    /// What runs an action's pipeline and its rollout (nil: actions are recorded as not possible).
    let pipelines: PipelineService?
    let endpoints: EndpointService?
    /// Attempts of a webhook call before it is given up.
    static let webhookAttempts: Int64 = 6

    /// What scores generation signals' answers (the gateway's evaluation runner).
    let generationScorer = Mutex<EvaluationRunner?>(nil)

    public func use(scorer: EvaluationRunner) {
        generationScorer.withLock { $0 = scorer }
    }

    /// Windows longer than this are refused (a month of hourly folders).
    static let longestWindowHours = 31 * 24

    public init(
        tracking: TrackingService, logger: Logger, tickSeconds: Double = 15, retrySeconds: Double = 5, client: HTTPClient = .shared,
        pipelines: PipelineService? = nil, endpoints: EndpointService? = nil
    ) {
        self.pipelines = pipelines
        self.endpoints = endpoints
        self.tracking = tracking
        self.logger = logger
        self.owner = "monitor-" + Identifiers.newHexID().prefix(12)
        self.tickSeconds = tickSeconds
        self.retrySeconds = retrySeconds
        self.client = client
    }

    var store: any MetadataStore { tracking.store }

    // MARK: Applying

    /// Checks a spec whole (every problem with its field and line) and makes it the workspace's
    /// monitor of its name; the endpoint must exist. The first scheduled pass is one interval
    /// (or the next cron time) away.
    public func apply(yaml: String, workspace: String, actor: String, now: Millis = Clock.nowMillis()) async throws -> (Monitor, changed: Bool, spec: MonitorSpec) {
        let spec = try MonitorSpec.parse(yaml: yaml)
        try Self.checkGeneration(spec)
        guard try await store.endpoint(name: spec.endpoint, workspace: workspace) != nil else {
            throw LoomError.notFound("No endpoint named \(spec.endpoint) in workspace \(workspace): the monitor watches an endpoint's collected requests")
        }
        let monitor = Monitor(
            workspace: workspace, name: spec.name, endpoint: spec.endpoint, specText: yaml, nextRunTime: Self.nextRun(spec, after: now),
            createdBy: actor, creationTime: now)
        let (saved, changed) = try await store.applyMonitor(monitor)
        return (saved, changed, spec)
    }

    static func nextRun(_ spec: MonitorSpec, after now: Millis) -> Millis? {
        switch spec.schedule {
        case nil: return nil
        case .every(let seconds)?: return now + Millis(seconds * 1000)
        case .cron(let expression)?:
            guard let cron = try? CronSchedule(parsing: expression),
                let next = cron.next(after: Date(timeIntervalSince1970: Double(now) / 1000))
            else { return nil }
            return Millis((next.timeIntervalSince1970 * 1000).rounded())
        }
    }

    // MARK: Passes

    /// What a pass did.
    public struct PassReport: Sendable, Codable {
        public var monitor: String
        public var passID: String
        public var time: Millis
        public var windowStart: Millis
        public var windowEnd: Millis
        public var rows: Int
        public var reference: String
        public var referenceRows: Int
        public var results: [MonitorResult]
        public var alerts: AlertChanges
    }

    /// Makes one pass of a monitor now (`loom monitor run`, or the schedule). `owner`: the lease
    /// holder when the schedule runs it.
    public func runPass(name: String, workspace: String, now: Millis = Clock.nowMillis(), owner: String? = nil) async throws -> PassReport {
        guard let monitor = try await store.monitor(name: name, workspace: workspace) else {
            throw LoomError.notFound("No monitor named \(name) in workspace \(workspace)")
        }
        let spec = try MonitorSpec.parse(yaml: monitor.specText, file: "monitor \(name)")
        let bounds = spec.window.bounds(now: now)
        let keepPredictions = spec.signals.contains { $0.kind == .modelPerformance }
        // A monitor of generation signals only (an LLM app's endpoint) reads no table and no reference.
        let readsTables = spec.signals.contains { !$0.kind.isGeneration }
        var window = readsTables
            ? try await readWindow(spec, workspace: workspace, bounds: bounds, keepPredictions: keepPredictions) : CollectedWindow()
        let reference = readsTables
            ? try await readReference(spec, workspace: workspace, now: now)
            : Reference(table: DriftTable(names: [], columns: [], rowCount: 0), description: "none (generation signals only)")
        var labels: [String: JSONValue] = [:]
        if keepPredictions {
            labels = try await readLabels(spec, workspace: workspace, from: bounds.start, to: now)
        }
        let predictions = window.predictions
        let current = window.table()
        let inputs = MonitorEvaluation.Inputs(
            reference: reference.table, current: current, target: reference.target, predictions: predictions, labels: labels,
            baselineMetrics: reference.metrics)
        let tables = try await DataWork.run { MonitorEvaluation.evaluate(spec, inputs) }
        let generated = try await generationOutcomes(spec, workspace: workspace, bounds: bounds)
        // In the spec's order.
        let byName = Dictionary((tables + generated).map { ($0.signal, $0) }, uniquingKeysWith: { a, _ in a })
        let outcomes = spec.signals.compactMap { byName[$0.name] }
        let passID = Identifiers.newHexID()
        let results = outcomes.map { o in
            MonitorResult(
                passID: passID, workspace: workspace, monitor: name, signal: o.signal, kind: o.kind.rawValue, time: now, windowStart: bounds.start,
                windowEnd: bounds.end, rows: Int64(o.rows), value: o.value, passed: o.passed, skipped: o.skipped, summary: o.summary, detailJSON: o.detail)
        }
        let next = monitor.nextRunTime == nil ? nil : Self.nextRun(spec, after: now)
        let calls = Self.deliveries(spec, workspace: workspace, passID: passID, now: now)
        let changes = try await store.recordMonitorPass(results, monitor: name, workspace: workspace, nextRunTime: next, owner: owner, deliveries: calls)
        if owner == nil, !spec.webhooks.isEmpty, !(changes.opened.isEmpty && changes.resolved.isEmpty) {
            // Asked for by a person: the calls go out now, not at the next tick.
            Task { await self.deliverWebhooks() }
        }
        for r in results {
            logger.info("monitor pass", metadata: [
                "monitor": "\(name)", "signal": "\(r.signal)", "passed": "\(r.passed)", "summary": "\(r.summary)", "rows": "\(r.rows)",
            ])
        }
        await startActions(spec, changes.opened, workspace: workspace, bounds: bounds)
        for alert in changes.opened {
            logger.warning("monitor alert opened", metadata: ["monitor": "\(name)", "signal": "\(alert.signal)", "alert": "\(alert.id)", "summary": "\(alert.summary)"])
        }
        for alert in changes.resolved {
            logger.notice("monitor alert resolved", metadata: ["monitor": "\(name)", "signal": "\(alert.signal)", "alert": "\(alert.id)"])
        }
        return PassReport(
            monitor: name, passID: passID, time: now, windowStart: bounds.start, windowEnd: bounds.end,
            rows: readsTables ? current.rowCount : generated.map(\.rows).max() ?? 0,
            reference: reference.description, referenceRows: reference.table.rowCount, results: results, alerts: changes)
    }

    /// The hour folders of an endpoint's collected files (or labels) that [start, end) touches.
    static func hourFolders(workspace: String, endpoint: String, labels: Bool, start: Millis, end: Millis) throws -> [String] {
        guard end > start else { return [] }
        let first = start / 3_600_000
        let last = (end - 1) / 3_600_000
        guard last - first < Millis(longestWindowHours) else {
            throw LoomError.invalidParameter("windows longer than \(longestWindowHours / 24) days are not read (\((last - first + 1) / 24) days asked)")
        }
        // The collector's own layout (RequestCollector.folder), one folder per hour.
        return (first...last).map { hour in RequestCollector.folder(workspace: workspace, endpoint: endpoint, time: hour * 3_600_000, labels: labels) }
    }

    /// Local folders holding the given stored folders' files (the store's own files when it is
    /// local; otherwise copies under `staging`); folders with nothing stored are left out.
    func localFolders(_ folders: [String], staging: String) async throws -> [String] {
        var out: [String] = []
        for folder in folders {
            if let local = tracking.artifacts as? LocalArtifactStore {
                let path = (local.root as NSString).appendingPathComponent(folder)
                if FileManager.default.fileExists(atPath: path) { out.append(path) }
                continue
            }
            let path = try ArtifactPath(folder)
            guard try await !tracking.artifacts.list(path).isEmpty else { continue }
            let target = (staging as NSString).appendingPathComponent(folder.replacingOccurrences(of: "/", with: "_"))
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            out.append(try await tracking.download(path, into: target))
        }
        return out
    }

    func withStaging<T>(_ body: (String) async throws -> T) async throws -> T {
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-monitor-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: staging) }
        return try await body(staging)
    }

    func readWindow(_ spec: MonitorSpec, workspace: String, bounds: (start: Millis, end: Millis), keepPredictions: Bool) async throws -> CollectedWindow {
        let folders = try Self.hourFolders(workspace: workspace, endpoint: spec.endpoint, labels: false, start: bounds.start, end: bounds.end)
        let options = CollectedWindow.Options(from: bounds.start, to: bounds.end, deployment: spec.deployment, keepPredictions: keepPredictions)
        return try await withStaging { staging in
            let local = try await localFolders(folders, staging: staging)
            // Reading and parsing is CPU work: off the cooperative pool.
            return try await DataWork.run { try CollectedWindow.read(folders: local, options: options) }
        }
    }

    func readLabels(_ spec: MonitorSpec, workspace: String, from start: Millis, to end: Millis) async throws -> [String: JSONValue] {
        // Labels arrive after the answers they belong to: from the window's start until now.
        let first = max(start, end - Millis(Self.longestWindowHours - 1) * 3_600_000)
        let folders = try Self.hourFolders(workspace: workspace, endpoint: spec.endpoint, labels: true, start: first, end: end + 1)
        return try await withStaging { staging in
            var labels: [String: JSONValue] = [:]
            for folder in try await localFolders(folders, staging: staging) {
                labels.merge(try CollectedLabels.read(folder: folder)) { _, later in later }
            }
            return labels
        }
    }

    struct Reference {
        var table: DriftTable
        var description: String
        /// The training target column (a training dataset reference).
        var target: String?
        /// The model version's run metrics.
        var metrics: [String: Double] = [:]
    }

    func readReference(_ spec: MonitorSpec, workspace: String, now: Millis) async throws -> Reference {
        switch spec.reference {
        case .window(let size, let offset):
            let end = now - Millis(offset * 1000)
            let bounds = (start: end - Millis(size * 1000), end: end)
            var window = try await readWindow(spec, workspace: workspace, bounds: bounds, keepPredictions: false)
            let model = try? await servedModel(spec, workspace: workspace)
            return Reference(
                table: window.table(), description: "production window \(Self.iso(bounds.start)) to \(Self.iso(bounds.end))",
                target: model?.target, metrics: model?.metrics ?? [:])
        case .dataset(let name, let version):
            let (files, _, found) = try await tracking.files(of: .version(name: name, version: version), workspace: workspace)
            let model = try? await servedModel(spec, workspace: workspace)
            return Reference(
                table: try await DataWork.run { try DriftTable.read(files: files) }, description: "dataset \(name)@\(found?.version ?? version ?? 0)", target: model?.target,
                metrics: model?.metrics ?? [:])
        case .lineage:
            let model = try await servedModel(spec, workspace: workspace)
            guard let dataset = model.dataset else {
                throw LoomError.invalidState(
                    "The reference comes from lineage, but model \(model.node) has no training dataset recorded: give reference: {dataset: NAME@VERSION} in the monitor")
            }
            let (files, _, _) = try await tracking.files(of: .version(name: dataset.name, version: dataset.version), workspace: workspace)
            return Reference(
                table: try await DataWork.run { try DriftTable.read(files: files) }, description: "dataset \(dataset.name)@\(dataset.version) (training data of \(model.node))",
                target: model.target, metrics: model.metrics)
        }
    }

    struct ServedModel {
        var node: String
        var dataset: (name: String, version: Int64)?
        var target: String?
        var metrics: [String: Double]
    }

    /// The model version the endpoint serves (the monitored deployment's, or the one with the
    /// most live traffic), its training dataset from lineage, its target and run metrics.
    func servedModel(_ spec: MonitorSpec, workspace: String) async throws -> ServedModel {
        guard let endpoint = try await store.endpoint(name: spec.endpoint, workspace: workspace) else {
            throw LoomError.notFound("No endpoint named \(spec.endpoint) in workspace \(workspace)")
        }
        let deployments = try await store.deployments(endpoint: spec.endpoint, workspace: workspace)
        let name = spec.deployment ?? endpoint.traffic.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
        guard let deployment = deployments.first(where: { $0.name == name }) ?? deployments.first, let served = deployment.modelVersion,
            let slash = served.lastIndex(of: "/")
        else {
            throw LoomError.invalidState("Endpoint \(spec.endpoint) serves no registered model version to take a reference from")
        }
        let modelName = String(served[..<slash])
        let version = String(served[served.index(after: slash)...])
        let node = LineageNodes.model(modelName, version)
        var out = ServedModel(node: node, dataset: nil, target: nil, metrics: [:])
        let graph = try await tracking.lineage(of: node, directions: [.upstream], depth: 6, workspace: workspace)
        if let edge = graph.edges.first(where: { $0.relation == "trained" && LineageNodes.kind($0.source) == "dataset" }) {
            let text = edge.source.dropFirst("dataset:".count)
            if let at = text.lastIndex(of: "@"), let v = Int64(text[text.index(after: at)...]) {
                out.dataset = (String(text[..<at]), v)
            }
        }
        if let mv = try? await tracking.modelVersion(name: modelName, version: version, workspace: workspace), let runID = mv.runID,
            let run = try? await tracking.run(id: runID)
        {
            out.target = run.params.first { $0.key == "target" }?.value
            var metrics: [String: Double] = [:]
            for m in run.metrics where m.value.isFinite { metrics[m.key] = m.value }
            // The version's own figure for each metric: on validation data when it has one.
            for name in ModelPerformance.metricNames {
                if let v = metrics["validation_\(name)"] ?? metrics[name] ?? metrics["training_\(name)"] { out.metrics[name] = v }
            }
        }
        return out
    }

    static func iso(_ ms: Millis) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    // MARK: The schedule

    /// Runs the passes that are due, each under its lease.
    public func tick(now: Millis = Clock.nowMillis()) async {
        let due: [Monitor]
        do {
            due = try await store.dueMonitors(now: now)
        } catch {
            logger.error("monitors: cannot list due monitors: \(error)")
            return
        }
        for monitor in due {
            do {
                guard try await store.leaseMonitor(name: monitor.name, workspace: monitor.workspace, owner: owner, until: now + 10 * 60_000, now: now) else {
                    continue
                }
                _ = try await runPass(name: monitor.name, workspace: monitor.workspace, now: now, owner: owner)
            } catch {
                logger.error("monitor pass failed", metadata: ["monitor": "\(monitor.name)", "error": "\(error)"])
                // Tried again at the next interval, not at every tick.
                let spec = try? MonitorSpec.parse(yaml: monitor.specText)
                _ = try? await store.recordMonitorPass(
                    [], monitor: monitor.name, workspace: monitor.workspace, nextRunTime: spec.flatMap { Self.nextRun($0, after: now) }, owner: owner,
                    deliveries: { _ in [] })
            }
        }
    }

    // MARK: Actions

    /// For each opened alert of a signal an action lists: its pipeline, run with its parameters
    /// (`${monitor}`, `${endpoint}`, `${signal}`, `${alert.id}`, `${window.start}`,
    /// `${window.end}` substituted), once per alert.
    func startActions(_ spec: MonitorSpec, _ opened: [MonitorAlert], workspace: String, bounds: (start: Millis, end: Millis)) async {
        for alert in opened {
            guard let action = spec.actions.first(where: { $0.on.contains(alert.signal) }) else { continue }
            guard let service = pipelines, let scheduler = service.scheduler else {
                try? await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "this server runs no pipelines: \(action.pipeline) was not run")
                continue
            }
            let values: [String: String] = [
                "monitor": spec.name, "endpoint": spec.endpoint, "signal": alert.signal, "alert.id": alert.id,
                "window.start": Self.iso(bounds.start), "window.end": Self.iso(bounds.end),
            ]
            var parameters: [String: JSONValue] = [:]
            for (key, value) in action.parameters {
                if case .string(var text) = value {
                    for (name, v) in values { text = text.replacingOccurrences(of: "${\(name)}", with: v) }
                    parameters[key] = .string(text)
                } else {
                    parameters[key] = value
                }
            }
            do {
                let given = try APIv1Controller.parameterValues(JSONBody(parameters))
                guard let run = try await scheduler.action(pipeline: action.pipeline, workspace: workspace, occasion: alert.id, parameters: given) else { continue }
                service.start(runID: run.id)
                try await store.setAlertAction(id: alert.id, runID: run.id)
                try? await store.addLineageEdges([LineageEdge(
                    workspace: workspace, source: "alert:\(alert.id)", target: "pipeline-run:\(run.id)", relation: "action", creationTime: Clock.nowMillis())])
                logger.notice("monitor action started", metadata: ["monitor": "\(spec.name)", "alert": "\(alert.id)", "pipeline": "\(action.pipeline)", "run": "\(run.id)"])
            } catch {
                logger.error("monitor action could not start", metadata: ["monitor": "\(spec.name)", "alert": "\(alert.id)", "error": "\(error)"])
                try? await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "\(action.pipeline) could not start: \(error)")
            }
        }
    }

    /// Follows the actions' pipeline runs: when one ends, and it succeeded and registered a
    /// model version, starts the action's rollout of that version on the monitored endpoint
    /// (its gates then promote or roll back).
    public func followActions() async {
        guard let waiting = try? await store.alertsAwaitingAction(limit: 100) else { return }
        for alert in waiting {
            guard let runID = alert.actionRunID, let run = try? await store.pipelineRun(id: runID), run.state.isFinished else { continue }
            do {
                guard run.state == .succeeded else {
                    try await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "pipeline run \(runID) \(run.state.rawValue)\(run.message.map { ": \($0)" } ?? "")")
                    continue
                }
                guard let monitor = try await store.monitor(name: alert.monitor, workspace: alert.workspace) else {
                    try await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "the monitor was deleted")
                    continue
                }
                let spec = try MonitorSpec.parse(yaml: monitor.specText)
                guard let action = spec.actions.first(where: { $0.on.contains(alert.signal) }), case .object(var fields)? = action.rollout else {
                    try await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "pipeline run \(runID) succeeded")
                    continue
                }
                guard let version = try await registeredVersion(runID: runID, workspace: alert.workspace) else {
                    try await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "pipeline run \(runID) succeeded but registered no model version: nothing to roll out")
                    continue
                }
                guard let endpoints else {
                    try await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "this server runs no endpoints: \(version) was not rolled out")
                    continue
                }
                fields["to"] = .string("models:/\(version)")
                let rolloutSpec = try await APIv1Controller.rolloutSpec(
                    JSONBody(fields), endpoint: spec.endpoint, workspace: alert.workspace, serving: endpoints.serving)
                let rollout = try await endpoints.rollouts.start(endpoint: spec.endpoint, spec: rolloutSpec, workspace: alert.workspace)
                try await store.finishAlertAction(
                    id: alert.id, rolloutID: rollout.id, message: "pipeline run \(runID) registered \(version); rollout \(rollout.id) started")
                logger.notice("monitor action rolled out", metadata: ["alert": "\(alert.id)", "version": "\(version)", "rollout": "\(rollout.id)"])
            } catch {
                logger.error("monitor action could not roll out", metadata: ["alert": "\(alert.id)", "error": "\(error)"])
                try? await store.finishAlertAction(id: alert.id, rolloutID: nil, message: "the rollout could not start: \(error)")
            }
        }
    }

    /// The model version (`NAME/VERSION`) a pipeline run's steps registered (lineage: a step's
    /// output edge to a model node), the last one when several.
    func registeredVersion(runID: String, workspace: String) async throws -> String? {
        var found: String?
        for step in try await store.stepRuns(pipelineRunID: runID) {
            let graph = try await tracking.lineage(of: LineageNodes.step(runID, step.step), directions: [.downstream], depth: 1, workspace: workspace)
            for edge in graph.edges where LineageNodes.kind(edge.target) == "model" {
                found = String(edge.target.dropFirst("model:".count))
            }
        }
        return found
    }

    // MARK: Webhooks

    /// What a webhook receives about an alert.
    struct AlertEvent: Encodable {
        let event: String
        let workspace: String
        let monitor: String
        let endpoint: String
        let signal: String
        let alertId: String
        let state: String
        let summary: String
        let passId: String
        let openedTime: Millis
        let resolvedTime: Millis?
        let passes: Int64
    }

    /// The webhook calls for a pass's alert changes: one per opened or resolved alert and hook.
    static func deliveries(_ spec: MonitorSpec, workspace: String, passID: String, now: Millis) -> @Sendable (AlertChanges) -> [WebhookDelivery] {
        { changes in
            guard !spec.webhooks.isEmpty else { return [] }
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var out: [WebhookDelivery] = []
            for (event, alerts) in [("alert.opened", changes.opened), ("alert.resolved", changes.resolved)] {
                for alert in alerts {
                    let body = AlertEvent(
                        event: event, workspace: workspace, monitor: spec.name, endpoint: spec.endpoint, signal: alert.signal, alertId: alert.id,
                        state: alert.state.rawValue, summary: alert.summary, passId: passID, openedTime: alert.openedTime, resolvedTime: alert.resolvedTime,
                        passes: alert.count)
                    let payload = (try? encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                    for hook in spec.webhooks {
                        out.append(WebhookDelivery(
                            id: Identifiers.newHexID(), workspace: workspace, monitor: spec.name, alertID: alert.id, event: event, url: hook.url,
                            secretEnv: hook.secretEnv, payload: payload, nextAttemptTime: now, creationTime: now))
                    }
                }
            }
            return out
        }
    }

    /// `sha256=` and the HMAC-SHA256 of `body` under `secret`, in hex: the `loom-signature` header.
    public static func signature(_ body: String, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + Identifiers.hex(bytes: mac)
    }

    /// Sends the webhook calls that are due, each claimed first so that one replica sends it.
    public func deliverWebhooks(now: Millis = Clock.nowMillis()) async {
        let due: [WebhookDelivery]
        do {
            due = try await store.dueWebhookDeliveries(now: now, limit: 100)
        } catch {
            logger.error("webhooks: cannot list due calls: \(error)")
            return
        }
        for delivery in due {
            do {
                guard try await store.claimWebhookDelivery(id: delivery.id, owner: owner, until: now + 60_000, now: now) else { continue }
                try await store.finishWebhookAttempt(await attempt(delivery, now: now))
            } catch {
                logger.error("webhook call failed to record", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
            }
        }
    }

    /// One attempt of a call; the delivery as it stands after it.
    func attempt(_ delivery: WebhookDelivery, now: Millis) async -> WebhookDelivery {
        var d = delivery
        d.attempts += 1
        var request = HTTPClientRequest(url: d.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "loom/\(LoomVersion.current)")
        request.headers.add(name: "loom-event", value: d.event)
        request.headers.add(name: "loom-delivery", value: d.id)
        if let name = d.secretEnv {
            guard let secret = ProcessInfo.processInfo.environment[name], !secret.isEmpty else {
                // Nothing will change while this server runs: give up now, saying why.
                d.state = .failed
                d.lastError = "the signing secret's environment variable \(name) is not set on the server"
                logger.error("webhook not sent", metadata: ["url": "\(d.url)", "error": "\(d.lastError!)"])
                return d
            }
            request.headers.add(name: "loom-signature", value: Self.signature(d.payload, secret: secret))
        }
        request.body = .bytes(ByteBuffer(string: d.payload))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 << 10)
            d.lastStatus = Int64(response.status.code)
            if (200..<300).contains(response.status.code) {
                d.state = .delivered
                d.deliveredTime = Clock.nowMillis()
                d.lastError = nil
                return d
            }
            d.lastError = "HTTP \(response.status.code)"
        } catch {
            d.lastError = "\(error)"
        }
        if d.attempts >= Self.webhookAttempts {
            d.state = .failed
            logger.error("webhook given up", metadata: ["url": "\(d.url)", "attempts": "\(d.attempts)", "error": "\(d.lastError ?? "")"])
        } else {
            // 5 s, 15 s, 45 s, ~2 min, ~7 min by default.
            d.nextAttemptTime = now + Millis(retrySeconds * pow(3, Double(d.attempts - 1)) * 1000)
            logger.warning("webhook will be retried", metadata: ["url": "\(d.url)", "attempt": "\(d.attempts)", "error": "\(d.lastError ?? "")"])
        }
        return d
    }

    public func run() async throws {
        let seconds = tickSeconds
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                await self.deliverWebhooks()
                await self.followActions()
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            }
        }
    }
}
