import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
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
                healthPath: s.healthPath, startupSeconds: s.startupSeconds)
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
                throw LoomError.invalidParameter("runtime must be native, process or external, not '\(runtimeText)'")
            }
            let settings = try Self.deploymentSettings(body)
            try await auth.requireRole(context, runtime == .process ? .admin : .editor)  // a process runs a program on the server
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
            let settingKeys = ["command", "replicas", "directory", "environment", "url", "invocation_path", "health_path", "startup_seconds"]
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
            startupSeconds: try body.double("startup_seconds"))
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
