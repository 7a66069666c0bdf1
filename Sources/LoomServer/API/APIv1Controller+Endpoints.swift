import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomServing
import LoomStore
import LoomTracking
import NIOCore

extension APIv1Controller {
    struct DeploymentBody: Encodable, Sendable {
        struct Settings: Encodable, Sendable {
            let command: String?
            let replicas: Int?
            let directory: String?
            let environment: [String: String]?
            let url: String?
            let invocationPath: String?
            let healthPath: String?
            let startupSeconds: Double?
            let flow: String?
        }

        let name: String
        let endpoint: String
        let model: String
        let modelVersion: String?
        let runtime: String
        let settings: Settings
        /// Live traffic percentage, and mirrored.
        let traffic: Int
        let mirror: Int
        /// Whether it can take traffic on this replica of the server now.
        let ready: Bool
        let replicas: [ProcessRuntime.ReplicaStatus]?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ d: Deployment, endpoint e: Endpoint, live: LiveDeployment?) {
            (name, self.endpoint, model, modelVersion, runtime) = (d.name, d.endpoint, d.model, d.modelVersion, d.runtime.rawValue)
            let s = d.settings
            settings = Settings(
                command: s.command, replicas: s.replicas, directory: s.directory, environment: s.environment, url: s.url, invocationPath: s.invocationPath,
                healthPath: s.healthPath, startupSeconds: s.startupSeconds, flow: s.flow)
            traffic = e.traffic[d.name] ?? 0
            mirror = e.mirror[d.name] ?? 0
            ready = live?.runtime.isReady ?? false
            replicas = (live?.runtime as? ProcessRuntime)?.status
            (createdBy, creationTime, lastUpdatedTime) = (d.createdBy, d.creationTime, d.lastUpdatedTime)
        }
    }

    struct EndpointBody: Encodable, Sendable {
        let name: String
        let workspace: String
        let description: String
        let auth: String
        let scoringUri: String
        let traffic: [String: Int]
        let mirror: [String: Int]
        let stickyHeader: String?
        let samplingRate: Double
        let concurrencyLimit: Int?
        let timeoutMs: Int
        let maxBodyBytes: Int
        let generation: Int64
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis
        /// Only when a key was just made: it is not shown again.
        let key: String?
        let deployments: [DeploymentBody]?

        init(_ e: Endpoint, key: String? = nil, deployments: [DeploymentBody]? = nil) {
            (name, workspace, description, auth) = (e.name, e.workspace, e.description, e.auth.rawValue)
            scoringUri = "/endpoints/\(e.name)/invocations"
            (traffic, mirror, stickyHeader, samplingRate) = (e.traffic, e.mirror, e.stickyHeader, e.samplingRate)
            (concurrencyLimit, timeoutMs, maxBodyBytes, generation) = (e.concurrencyLimit, e.timeoutMillis, e.maxBodyBytes, e.generation)
            (createdBy, creationTime, lastUpdatedTime) = (e.createdBy, e.creationTime, e.lastUpdatedTime)
            self.key = key
            self.deployments = deployments
        }
    }

    struct RolloutBody: Encodable, Sendable {
        struct Spec: Encodable, Sendable {
            let strategy: String
            let model: String
            let deployment: String
            let steps: [Int]
            let mirror: Int
            let bakeSeconds: Double
            let gateIntervalSeconds: Double
            let minRequests: Int
            let gates: [RolloutGate]
            let validation: RolloutValidation?
        }

        struct Decision: Encodable, Sendable {
            let sequence: Int64
            let time: Millis
            let kind: String
            let outcome: String
            let summary: String
            let detail: JSONText?
            let actor: String
        }

        let id: String
        let endpoint: String
        let baseline: String
        let candidate: String
        let state: String
        let stage: Int
        let stages: [String]
        let stageStarted: Millis?
        let previousTraffic: [String: Int]
        let previousMirror: [String: Int]
        let message: String?
        let requestedAction: String?
        let spec: Spec
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis
        let endTime: Millis?
        let decisions: [Decision]?

        init(_ r: Rollout, decisions: [RolloutDecision]?) {
            (id, endpoint, baseline, candidate, state, stage) = (r.id, r.endpoint, r.baseline, r.spec.deployment, r.state.rawValue, r.stage)
            stages = RolloutController.stages(r.spec).map(RolloutController.describe)
            (stageStarted, previousTraffic, previousMirror, message, requestedAction) = (r.stageStarted, r.previousTraffic, r.previousMirror, r.message, r.requestedAction)
            let s = r.spec
            spec = Spec(
                strategy: s.strategy.rawValue, model: s.model, deployment: s.deployment, steps: s.steps, mirror: s.mirrorPercent, bakeSeconds: s.bakeSeconds,
                gateIntervalSeconds: s.gateIntervalSeconds, minRequests: s.minRequests, gates: s.gates, validation: s.validation)
            (createdBy, creationTime, lastUpdatedTime, endTime) = (r.createdBy, r.creationTime, r.lastUpdatedTime, r.endTime)
            self.decisions = decisions?.map {
                Decision(sequence: $0.sequence, time: $0.time, kind: $0.kind, outcome: $0.outcome, summary: $0.summary, detail: $0.detail.map(JSONText.init), actor: $0.actor)
            }
        }
    }

    func addEndpointRoutes(to routes: Routes) {
        let p = Self.prefix + "/endpoints"
        let serving = services.serving
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            let name = try body.requiredString("name")
            let settings = try Self.endpointSettings(body)
            try await auth.requireRole(context, .editor)
            let (e, key) = try await serving.createEndpoint(name: name, settings: settings, workspace: context.workspace)
            return try Self.respond(EndpointBody(e, key: key, deployments: []), status: .created)
        }
        routes.get(p) { _, context in
            try await auth.requireRole(context, .viewer)
            let list = try await tracking.store.endpoints(workspace: context.workspace)
            return try Self.respond(Listing(items: list.map { EndpointBody($0) }, nextPageToken: nil))
        }
        routes.get("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            return try Self.respond(try await endpointDetail(name, context))
        }
        routes.patch("\(p)/:name") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            let settings = try Self.endpointSettings(body)
            let regenerate = try body.bool("regenerate_key") ?? false
            try await auth.requireRole(context, .editor)
            let (_, key) = try await serving.updateEndpoint(name: name, settings: settings, regenerateKey: regenerate, workspace: context.workspace)
            var detail = try await endpointDetail(name, context)
            if let key { detail = EndpointBody(try await serving.endpoint(name: name, workspace: context.workspace), key: key, deployments: detail.deployments) }
            return try Self.respond(detail)
        }
        routes.delete("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .editor)
            try await serving.deleteEndpoint(name: name, workspace: context.workspace)
            return Self.noContent
        }
        // Live weights and the mirror, checked whole: a refused map leaves the old one.
        routes.put("\(p)/:name/traffic") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            let traffic = try Self.weights(body, "traffic")
            let mirror = try Self.weights(body, "mirror")
            guard traffic != nil || mirror != nil else { throw LoomError.invalidParameter("Give traffic, mirror or both") }
            try await auth.requireRole(context, .editor)
            _ = try await serving.setTraffic(name: name, traffic: traffic, mirror: mirror, workspace: context.workspace)
            return try Self.respond(try await endpointDetail(name, context))
        }
        // Rollouts: started here, driven by the server to their end (docs/deployment.md).
        let rollouts = services.endpoints.rollouts
        let gateway = services.gateway
        routes.post("\(p)/:name/rollouts") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let spec = try await Self.rolloutSpec(body, endpoint: name, workspace: context.workspace, serving: serving)
            if let e = spec.evaluation, let flow = spec.flow {
                // The evaluation checked against the flow now, not when its stage comes.
                let (_, flowSpec) = try await gateway.flowLibrary.resolve(flow, workspace: context.workspace)
                let evaluation = try EvaluationSpec.parse(yaml: e.spec)
                try gateway.evaluations.check(evaluation, flow: flowSpec)
                if let gates = e.failUnder { do { _ = try Gate(parsing: gates) } catch { throw LoomError.invalidParameter("evaluation.fail_under: \(error)") } }
                _ = try await tracking.datasetVersion(
                    name: String(e.dataset.split(separator: "@")[0]), version: e.dataset.split(separator: "@").dropFirst().first.flatMap { Int64($0) },
                    workspace: context.workspace)
            }
            let r = try await rollouts.start(endpoint: name, spec: spec, workspace: context.workspace)
            return try Self.respond(RolloutBody(r, decisions: try await tracking.store.rolloutDecisions(id: r.id)), status: .created)
        }
        routes.get("\(p)/:name/rollouts") { request, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            _ = try await serving.endpoint(name: name, workspace: context.workspace)
            let list = try await tracking.store.rollouts(endpoint: name, workspace: context.workspace, limit: try Self.limit(request, default: 20))
            return try Self.respond(Listing(items: list.map { RolloutBody($0, decisions: nil) }, nextPageToken: nil))
        }
        routes.get("\(p)/:name/rollouts/:id") { _, context in
            let name = try Self.param(context, "name")
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .viewer)
            guard let r = try await tracking.store.rollout(id: id), r.endpoint == name, r.workspace == context.workspace else {
                throw LoomError.notFound("Endpoint \(name) has no rollout \(id)")
            }
            return try Self.respond(RolloutBody(r, decisions: try await tracking.store.rolloutDecisions(id: id)))
        }
        // A person's promote, pause, resume or abort of the endpoint's active rollout.
        routes.post("\(p)/:name/rollout/:action") { _, context in
            let name = try Self.param(context, "name")
            let action = try Self.param(context, "action")
            guard ["promote", "pause", "resume", "abort"].contains(action) else {
                throw LoomError.notFound("No rollout action \(action) (promote, pause, resume, abort)")
            }
            try await auth.requireRole(context, .editor)
            let r = try await rollouts.request(action, endpoint: name, workspace: context.workspace)
            return try Self.respond(RolloutBody(r, decisions: try await tracking.store.rolloutDecisions(id: r.id)))
        }
        // Ground truth for scored requests, by correlation id, next to the collected requests.
        routes.post("\(p)/:name/labels") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            var labels: [ServingService.Label] = []
            for (i, item) in try body.objects("labels").enumerated() {
                guard let label = item.fields["label"] else { throw LoomError.invalidParameter("labels[\(i)] has no label") }
                labels.append(ServingService.Label(correlationID: try item.requiredString("correlation_id"), label: label, time: try item.int64("time_ms")))
            }
            try await auth.requireRole(context, .editor)
            let path = try await serving.postLabels(endpoint: name, labels: labels, workspace: context.workspace)
            struct Written: Encodable, Sendable {
                let written: Int
                let path: String
            }
            return try Self.respond(Written(written: labels.count, path: path), status: .created)
        }
        routes.post("\(p)/:name/deployments") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            let deployment = try body.requiredString("name")
            let runtimeText = try body.string("runtime") ?? "native"
            guard let runtime = Deployment.Runtime(rawValue: runtimeText) else {
                throw LoomError.invalidParameter("runtime must be native, process, external or flow, not '\(runtimeText)'")
            }
            let settings = try Self.deploymentSettings(body)
            try await auth.requireRole(context, runtime == .process ? .admin : .editor)  // a process runs a program on the server
            if runtime == .flow, let flow = settings.flow {
                // A flow with a tool node makes the server call any URL it names: an administrator's, as for running it.
                let (_, spec) = try await services.gateway.flowLibrary.resolve(flow, workspace: context.workspace)
                if Self.hasTools(spec) { try await auth.requireRole(context, .admin) }
            }
            let d = try await serving.deploy(
                endpoint: name, name: deployment, model: try body.string("model") ?? "", runtime: runtime, settings: settings, workspace: context.workspace)
            let e = try await serving.endpoint(name: name, workspace: context.workspace)
            let live = serving.router.endpoint(workspace: context.workspace, name: name)?.deployments[d.name]
            return try Self.respond(DeploymentBody(d, endpoint: e, live: live), status: .created)
        }
        routes.get("\(p)/:name/deployments/:deployment") { _, context in
            let name = try Self.param(context, "name")
            let deployment = try Self.param(context, "deployment")
            try await auth.requireRole(context, .viewer)
            let detail = try await endpointDetail(name, context)
            guard let d = detail.deployments?.first(where: { $0.name == deployment }) else {
                throw LoomError.notFound("Endpoint \(name) has no deployment named \(deployment)")
            }
            return try Self.respond(d)
        }
        routes.patch("\(p)/:name/deployments/:deployment") { request, context in
            let name = try Self.param(context, "name")
            let deployment = try Self.param(context, "deployment")
            let body = try await Self.body(request, context)
            let model = try body.string("model")
            let settingKeys = ["command", "replicas", "directory", "environment", "url", "invocation_path", "health_path", "startup_seconds", "flow"]
            let settings = settingKeys.contains(where: body.has) ? try Self.deploymentSettings(body) : nil
            let current = try await tracking.store.deployments(endpoint: name, workspace: context.workspace).first { $0.name == deployment }
            try await auth.requireRole(context, current?.runtime == .process ? .admin : .editor)
            let d = try await serving.updateDeployment(endpoint: name, name: deployment, model: model, settings: settings, workspace: context.workspace)
            let e = try await serving.endpoint(name: name, workspace: context.workspace)
            let live = serving.router.endpoint(workspace: context.workspace, name: name)?.deployments[d.name]
            return try Self.respond(DeploymentBody(d, endpoint: e, live: live))
        }
        routes.delete("\(p)/:name/deployments/:deployment") { _, context in
            let name = try Self.param(context, "name")
            let deployment = try Self.param(context, "deployment")
            try await auth.requireRole(context, .editor)
            try await serving.deleteDeployment(endpoint: name, name: deployment, workspace: context.workspace)
            return Self.noContent
        }
    }

    func endpointDetail(_ name: String, _ context: Context) async throws -> EndpointBody {
        let e = try await services.serving.endpoint(name: name, workspace: context.workspace)
        let live = services.serving.router.endpoint(workspace: context.workspace, name: name)
        let deployments = try await tracking.store.deployments(endpoint: name, workspace: context.workspace)
        return EndpointBody(e, deployments: deployments.map { DeploymentBody($0, endpoint: e, live: live?.deployments[$0.name]) })
    }

    /// A rollout spec from a request body (also what `loom apply -f` sends for `kind: rollout`).
    static func rolloutSpec(_ body: JSONBody, endpoint: String, workspace: String, serving: ServingService) async throws -> RolloutSpec {
        let strategyText = try body.string("strategy") ?? "canary"
        guard let strategy = RolloutSpec.Strategy(rawValue: strategyText) else {
            throw LoomError.invalidParameter("strategy must be canary or blue-green, not '\(strategyText)'")
        }
        let model = try body.string("to").map(Self.modelReference) ?? ""
        var deployment = try body.string("deployment")
        let flow = try body.string("flow")
        if flow != nil, !model.isEmpty { throw LoomError.invalidParameter("to and flow: roll out a model or a flow, not both") }
        if let flow, deployment == nil {
            // NAME-vVERSION of the flow's version, as loom flow serve names it.
            let pinned = try await serving.flowInvoker().pin(flow: flow, workspace: workspace)
            deployment = pinned.replacingOccurrences(of: "@", with: "-v")
        }
        if deployment == nil {
            guard !model.isEmpty else { throw LoomError.invalidParameter("Give the model to roll out (to) or an existing deployment") }
            let (name, version) = try await serving.models.registeredVersion(model, workspace: workspace)
            deployment = String("\(name)-v\(version)".map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        }
        var spec = RolloutSpec(strategy: strategy, model: model, deployment: deployment!, flow: flow)
        if let e = try body.object("evaluation") {
            let known: Set<String> = ["spec", "dataset", "fail_under"]
            if let unknown = e.fields.keys.sorted().first(where: { !known.contains($0) }) {
                throw LoomError.invalidParameter("evaluation: unknown key \(unknown) (spec, dataset, fail_under)")
            }
            spec.evaluation = RolloutEvaluation(spec: try e.requiredString("spec"), dataset: try e.requiredString("dataset"), failUnder: try e.string("fail_under"))
        }
        if body.has("steps"), strategy == .blueGreen {
            throw LoomError.invalidParameter("steps are for canary rollouts; blue-green switches at once (after an optional mirror)")
        }
        if body.has("steps") {
            spec.steps = try body.array("steps").enumerated().map { (i, v) throws(LoomError) -> Int in
                guard case .number(let d, _) = v, d == d.rounded(), abs(d) < 1e6 else { throw LoomError.invalidParameter("steps[\(i)] must be an integer percentage") }
                return Int(d)
            }
        }
        spec.mirrorPercent = try body.int("mirror") ?? 0
        if let bake = body.fields["bake"] ?? body.fields["bake_seconds"] { spec.bakeSeconds = try Self.seconds(bake, "bake") }
        if let interval = body.fields["gate_interval"] ?? body.fields["gate_interval_seconds"] { spec.gateIntervalSeconds = try Self.seconds(interval, "gate_interval") }
        spec.minRequests = try body.int("min_requests") ?? spec.minRequests
        if body.has("gates") {
            spec.gates = try body.objects("gates").enumerated().map { (i, g) throws(LoomError) -> RolloutGate in
                let known: Set<String> = ["metric", "max", "min", "max_ratio", "max_increase", "min_delta"]
                if let unknown = g.fields.keys.sorted().first(where: { !known.contains($0) }) {
                    throw LoomError.invalidParameter("gates[\(i)]: unknown key \(unknown) (metric, max, min, max_ratio, max_increase, min_delta)")
                }
                return RolloutGate(
                    metric: try g.requiredString("metric"), max: try g.double("max"), min: try g.double("min"), maxRatio: try g.double("max_ratio"),
                    maxIncrease: try g.double("max_increase"), minDelta: try g.double("min_delta"))
            }
        }
        if let v = try body.object("validation") {
            var validation = RolloutValidation(dataset: try v.requiredString("dataset"), target: try v.string("target"))
            if let t = try v.object("thresholds") {
                for (metric, value) in t.fields {
                    guard case .object(let b) = value else { throw LoomError.invalidParameter("validation.thresholds.\(metric) must be {min, max}") }
                    let bound = JSONBody(b)
                    validation.thresholds[metric] = RolloutValidation.Bound(min: try bound.double("min"), max: try bound.double("max"))
                }
            }
            if v.has("allowed") {
                validation.allowed = try v.array("allowed").map { value in
                    switch value {
                    case .string(let s): return s
                    case .number(let d, let raw): return raw ?? String(d)
                    case .bool(let b): return b ? "true" : "false"
                    default: throw LoomError.invalidParameter("validation.allowed holds strings, numbers or booleans")
                    }
                }
            }
            if let range = try v.object("range") { validation.range = RolloutValidation.Bound(min: try range.double("min"), max: try range.double("max")) }
            validation.maxRows = try v.int("max_rows") ?? validation.maxRows
            spec.validation = validation
        }
        try RolloutController.check(spec)
        return spec
    }

    /// `model:NAME@ALIAS` or `model:NAME/VERSION` (lineage names) as `models:/...`; others as given.
    static func modelReference(_ text: String) -> String {
        text.hasPrefix("model:") ? "models:/" + text.dropFirst("model:".count) : text
    }

    /// Seconds from a number or a duration text (`90`, `30s`, `5m`, `1h`, `250ms`).
    static func seconds(_ value: JSONValue, _ key: String) throws(LoomError) -> Double {
        switch value {
        case .number(let d, _): return d
        case .string(let s):
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
            for (unit, factor) in units where s.hasSuffix(unit) {
                if let n = Double(s.dropLast(unit.count)), n.isFinite { return n * factor }
            }
            if let n = Double(s), n.isFinite { return n }
            throw LoomError.invalidParameter("\(key) must be seconds or a duration such as 30s, 5m, 1h; not '\(s)'")
        default:
            throw LoomError.invalidParameter("\(key) must be seconds or a duration such as 30s, 5m, 1h")
        }
    }

    static func endpointSettings(_ body: JSONBody) throws(LoomError) -> ServingService.EndpointSettings {
        var s = ServingService.EndpointSettings()
        s.description = try body.string("description")
        if let a = try body.string("auth") {
            guard let mode = Endpoint.AuthMode(rawValue: a) else { throw LoomError.invalidParameter("auth must be workspace or key, not '\(a)'") }
            s.auth = mode
        }
        if body.has("sticky_header") { s.stickyHeader = .some(try body.string("sticky_header")) }
        s.samplingRate = try body.double("sampling_rate")
        if body.has("concurrency_limit") { s.concurrencyLimit = .some(try body.int("concurrency_limit")) }
        s.timeoutMillis = try body.int("timeout_ms")
        s.maxBodyBytes = try body.int("max_body_bytes")
        return s
    }

    static func deploymentSettings(_ body: JSONBody) throws(LoomError) -> Deployment.Settings {
        var environment: [String: String]?
        if let given = try body.object("environment") {
            var env: [String: String] = [:]
            for key in given.fields.keys { env[key] = try given.requiredString(key) }
            environment = env
        }
        return Deployment.Settings(
            command: try body.string("command"), replicas: try body.int("replicas"), directory: try body.string("directory"), environment: environment,
            url: try body.string("url"), invocationPath: try body.string("invocation_path"), healthPath: try body.string("health_path"),
            startupSeconds: try body.double("startup_seconds"), flow: try body.string("flow"))
    }

    /// `{"blue": 90, "green": 10}`: integer percentages by deployment.
    static func weights(_ body: JSONBody, _ key: String) throws(LoomError) -> [String: Int]? {
        guard let map = try body.object(key) else { return nil }
        var out: [String: Int] = [:]
        for (name, value) in map.fields {
            guard case .number(let d, _) = value, d == d.rounded(), abs(d) <= 1_000_000 else {
                throw LoomError.invalidParameter("\(key).\(name) must be an integer percentage")
            }
            out[name] = Int(d)
        }
        return out
    }
}
