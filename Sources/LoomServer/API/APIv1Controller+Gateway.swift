import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomStore

/// `/api/v1/gateway/...` and `/api/v1/catalog/...`: the gateway's providers, routes, keys and
/// usage, and the model catalog (docs/gateway.md).
extension APIv1Controller {
    struct ProviderBody: Encodable, Sendable {
        let name: String
        let type: String
        let baseUrl: String
        /// `env:NAME` or `secret:NAME` (never the key), or nil for providers without one.
        let keySource: String?
        /// Why the key cannot be read now, if it cannot.
        let keyProblem: String?
        let version: Int64
        let spec: String?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ r: GatewayResource, problem: String?, withSpec: Bool) {
            let spec = try? ProviderSpec.parse(yaml: r.specText)
            name = r.name
            type = spec?.kind.rawValue ?? "?"
            baseUrl = spec?.baseURL ?? ""
            keySource = spec?.apiKeyEnv.map { "env:" + $0 } ?? spec?.apiKeySecret.map { "secret:" + $0 }
            keyProblem = problem
            version = r.version
            self.spec = withSpec ? r.specText : nil
            (createdBy, creationTime, lastUpdatedTime) = (r.createdBy, r.creationTime, r.lastUpdatedTime)
        }
    }

    struct TargetBody: Encodable, Sendable {
        let provider: String
        let model: String
        let weight: Int?
    }

    struct RouteBody: Encodable, Sendable {
        let name: String
        let task: String
        let targets: [TargetBody]
        let fallbacks: [TargetBody]
        let retries: Int
        let timeoutSeconds: Double
        let cacheTtlSeconds: Double?
        let requestsPerMinute: Int64?
        let tokensPerMinute: Int64?
        let spendPerDay: Double?
        let prompt: String?
        let policies: [String]
        let version: Int64
        let spec: String?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ r: GatewayResource, withSpec: Bool) {
            let spec = try? RouteSpec.parse(yaml: r.specText)
            prompt = spec?.prompt?.description
            policies = spec?.policies ?? []
            name = r.name
            task = spec?.task.rawValue ?? "?"
            targets = spec?.targets.map { TargetBody(provider: $0.provider, model: $0.model, weight: $0.weight) } ?? []
            fallbacks = spec?.fallbacks.map { TargetBody(provider: $0.provider, model: $0.model, weight: nil) } ?? []
            retries = spec?.retries ?? 0
            timeoutSeconds = spec?.timeout ?? 0
            cacheTtlSeconds = spec?.cache?.ttl
            (requestsPerMinute, tokensPerMinute, spendPerDay) = (spec?.limits.requestsPerMinute, spec?.limits.tokensPerMinute, spec?.limits.spendPerDay)
            version = r.version
            self.spec = withSpec ? r.specText : nil
            (createdBy, creationTime, lastUpdatedTime) = (r.createdBy, r.creationTime, r.lastUpdatedTime)
        }
    }

    struct PolicyBody: Encodable, Sendable {
        struct RuleBody: Encodable, Sendable {
            let type: String
            let action: String
            let applyTo: [String]
        }

        let name: String
        let description: String?
        let rules: [RuleBody]
        let version: Int64
        let spec: String?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ r: GatewayResource, withSpec: Bool) {
            let spec = try? PolicySpec.parse(yaml: r.specText)
            name = r.name
            description = spec?.description
            rules = spec?.rules.map { RuleBody(type: $0.check.name, action: $0.action.rawValue, applyTo: $0.stages.map(\.rawValue).sorted()) } ?? []
            version = r.version
            self.spec = withSpec ? r.specText : nil
            (createdBy, creationTime, lastUpdatedTime) = (r.createdBy, r.creationTime, r.lastUpdatedTime)
        }
    }

    struct KeyBody: Encodable, Sendable {
        let id: String
        let name: String
        let prefix: String
        let routes: [String]
        let requestsPerMinute: Int64?
        let tokensPerMinute: Int64?
        let spendPerDay: Double?
        let createdBy: String
        let creationTime: Millis
        let revokedTime: Millis?
        /// Only in the answer that creates it.
        let key: String?

        init(_ k: GatewayKey, secret: String? = nil) {
            (id, name, prefix, routes) = (k.id, k.name, k.prefix, k.routes)
            (requestsPerMinute, tokensPerMinute, spendPerDay) = (k.requestsPerMinute, k.tokensPerMinute, k.spendPerDay)
            (createdBy, creationTime, revokedTime, key) = (k.createdBy, k.creationTime, k.revokedTime, secret)
        }
    }

    struct UsageBody: Encodable, Sendable {
        let day: String
        let key: String
        let route: String
        let provider: String
        let model: String
        let requests: Int64
        let errors: Int64
        let cached: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        let totalTokens: Int64
        let cost: Double

        init(_ u: GatewayUsage) {
            (day, key, route, provider, model) = (u.day, u.key, u.route, u.provider, u.model)
            (requests, errors, cached, promptTokens, completionTokens) = (u.requests, u.errors, u.cached, u.promptTokens, u.completionTokens)
            totalTokens = u.promptTokens + u.completionTokens
            cost = u.cost
        }
    }

    struct UsageReport: Encodable, Sendable {
        let from: String
        let to: String
        let groupBy: [String]
        let items: [UsageBody]
        let totals: UsageBody
    }

    struct TraceBody: Encodable, Sendable {
        let id: String
        let route: String
        let key: String?
        let task: String
        let provider: String?
        let model: String?
        let status: Int
        let stream: Bool
        let startTime: Millis
        let durationMs: Double
        let promptTokens: Int64
        let completionTokens: Int64
        let cost: Double
        let error: String?
        let input: String
        let output: String
        let spans: JSONValue?

        init(_ t: GatewayTrace, full: Bool) {
            (id, route, key, task, provider, model) = (t.id, t.route, t.key.isEmpty ? nil : t.key, t.task, t.provider, t.model)
            (status, stream, startTime, durationMs) = (t.status, t.stream, t.startTime, Double(t.durationMicros) / 1000)
            (promptTokens, completionTokens, cost, error) = (t.promptTokens, t.completionTokens, t.cost, t.error)
            input = full ? t.input : Self.preview(t.input)
            output = full ? t.output : Self.preview(t.output)
            spans = full ? (try? JSONValue.parse(Array(t.spansJSON.utf8))) : nil
        }

        static func preview(_ s: String) -> String { s.count > 200 ? String(s.prefix(200)) + "…" : s }
    }

    struct CatalogBody: Encodable, Sendable {
        let provider: String
        let model: String
        let capabilities: [String]
        let contextLength: Int64?
        let inputPricePerMillion: Double?
        let outputPricePerMillion: Double?
        let license: String?
        let status: String
        let deprecated: Bool
        let deprecationDate: String?
        let description: String
        let source: String
        let lastUpdatedTime: Millis

        init(_ m: CatalogModel) {
            (provider, model, capabilities, contextLength) = (m.provider, m.model, m.capabilities, m.contextLength)
            (inputPricePerMillion, outputPricePerMillion, license, status) = (m.inputPrice, m.outputPrice, m.license, m.status)
            (deprecated, deprecationDate, description, source, lastUpdatedTime) = (m.isDeprecated, m.deprecationDate, m.description, m.source, m.lastUpdatedTime)
        }
    }

    struct AppliedResource: Encodable, Sendable {
        let kind: String
        let name: String
        let version: Int64
        let changed: Bool
    }

    func addGatewayRoutes(to routes: Routes) {
        let p = Self.prefix + "/gateway"
        let service = services.gateway
        let store = services.store
        let auth = self.auth

        for kind in GatewayResource.Kind.allCases {
            let path = "\(p)/\(kind.plural)"
            // Applies a `kind: provider` / `kind: route` spec (YAML, or JSON `{"spec": "YAML"}`).
            routes.post(path) { request, context in
                let text = try await Self.specText(request, context)
                try await auth.requireRole(context, .editor)
                guard gatewaySpecKind(text) == kind else { throw LoomError.invalidParameter("The spec's kind must be \(kind.rawValue) here") }
                let (r, changed) = try await service.apply(yaml: text, workspace: context.workspace, actor: context.actor.username)
                return try Self.respond(
                    AppliedResource(kind: kind.rawValue, name: r.name, version: r.version, changed: changed), status: changed && r.version == 1 ? .created : .ok)
            }
            routes.get(path) { _, context in
                try await auth.requireRole(context, .viewer)
                let list = try await store.gatewayResources(workspace: context.workspace, kind: kind)
                switch kind {
                case .provider:
                    let problems = service.gateway.providerProblems(workspace: context.workspace)
                    return try Self.respond(Listing(items: list.map { ProviderBody($0, problem: problems[$0.name], withSpec: false) }, nextPageToken: nil))
                case .route: return try Self.respond(Listing(items: list.map { RouteBody($0, withSpec: false) }, nextPageToken: nil))
                case .policy: return try Self.respond(Listing(items: list.map { PolicyBody($0, withSpec: false) }, nextPageToken: nil))
                }
            }
            routes.get("\(path)/:name") { _, context in
                let name = try Self.param(context, "name")
                try await auth.requireRole(context, .viewer)
                guard let r = try await store.gatewayResources(workspace: context.workspace, kind: kind).first(where: { $0.name == name }) else {
                    throw LoomError.notFound("No \(kind.rawValue) named \(name) in workspace \(context.workspace)")
                }
                switch kind {
                case .provider:
                    return try Self.respond(ProviderBody(r, problem: service.gateway.providerProblems(workspace: context.workspace)[name], withSpec: true))
                case .route: return try Self.respond(RouteBody(r, withSpec: true))
                case .policy: return try Self.respond(PolicyBody(r, withSpec: true))
                }
            }
            routes.delete("\(path)/:name") { _, context in
                let name = try Self.param(context, "name")
                try await auth.requireRole(context, .editor)
                try await service.delete(kind: kind, name: name, workspace: context.workspace)
                return Self.noContent
            }
        }

        routes.post("\(p)/keys") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let limits = RouteSpec.Limits(
                requestsPerMinute: try Self.positive(body.int64("requests_per_minute"), "requests_per_minute"),
                tokensPerMinute: try Self.positive(body.int64("tokens_per_minute"), "tokens_per_minute"),
                spendPerDay: try body.double("spend_per_day").map { v in
                    guard v >= 0, v.isFinite else { throw LoomError.invalidParameter("spend_per_day must be 0 or more") }
                    return v
                })
            let (key, secret) = try await service.createKey(
                name: try body.requiredString("name"), routes: try body.strings("routes"), limits: limits, workspace: context.workspace,
                actor: context.actor.username)
            return try Self.respond(KeyBody(key, secret: secret), status: .created)
        }
        routes.get("\(p)/keys") { _, context in
            try await auth.requireRole(context, .editor)
            return try Self.respond(Listing(items: try await store.gatewayKeys(workspace: context.workspace).map { KeyBody($0) }, nextPageToken: nil))
        }
        routes.delete("\(p)/keys/:id") { _, context in
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .editor)
            try await service.revokeKey(id: id, workspace: context.workspace)
            return Self.noContent
        }
        // Usage sums for a span of days, grouped by any of day, key, route, provider, model.
        routes.get("\(p)/usage") { request, context in
            try await auth.requireRole(context, .viewer)
            let today = UTCDay.string(millis: Clock.nowMillis())
            let from = try Self.day(request.uri.queryParameters["from"].map(String.init) ?? today, "from")
            let to = try Self.day(request.uri.queryParameters["to"].map(String.init) ?? today, "to")
            guard from <= to else { throw LoomError.invalidParameter("from (\(from)) is after to (\(to))") }
            let allowed = ["day", "key", "route", "provider", "model"]
            let groupBy = request.uri.queryParameters["group_by"].map { $0.split(separator: ",").map(String.init) } ?? allowed
            if let bad = groupBy.first(where: { !allowed.contains($0) }) {
                throw LoomError.invalidParameter("group_by takes \(allowed.joined(separator: ", ")), not \(bad)")
            }
            let rows = try await service.gateway.usage(workspace: context.workspace, fromDay: from, toDay: to)
            var grouped: [String: GatewayUsage] = [:]
            var order: [String] = []
            var total = GatewayUsage(workspace: context.workspace, day: "", route: "", provider: "", model: "")
            for row in rows {
                var g = GatewayUsage(
                    workspace: row.workspace, day: groupBy.contains("day") ? row.day : "", key: groupBy.contains("key") ? row.key : "",
                    route: groupBy.contains("route") ? row.route : "", provider: groupBy.contains("provider") ? row.provider : "",
                    model: groupBy.contains("model") ? row.model : "")
                if grouped[g.identity] == nil { order.append(g.identity) }
                g = grouped[g.identity] ?? g
                g.add(row)
                grouped[g.identity] = g
                total.add(row)
            }
            return try Self.respond(UsageReport(from: from, to: to, groupBy: groupBy, items: order.map { UsageBody(grouped[$0]!) }, totals: UsageBody(total)))
        }

        // Traces, newest first: ?route=, ?failed=true, ?before= (a start time, for the next page).
        routes.get("\(p)/traces") { request, context in
            try await auth.requireRole(context, .viewer)
            let failed = request.uri.queryParameters["failed"].map { $0 == "true" } ?? false
            let before = try request.query.int("before").map(Millis.init)
            let route = request.uri.queryParameters["route"].map(String.init)
            let limit = try Self.limit(request, default: 50)
            await service.gateway.flushUsage()
            let list = try await store.gatewayTraces(workspace: context.workspace, route: route, failedOnly: failed, before: before, limit: limit)
            return try Self.respond(Listing(
                items: list.map { TraceBody($0, full: false) }, nextPageToken: list.count == limit ? list.last.map { String($0.startTime) } : nil))
        }
        routes.get("\(p)/traces/:id") { _, context in
            let id = try Self.param(context, "id")
            try await auth.requireRole(context, .viewer)
            await service.gateway.flushUsage()
            guard let t = try await store.gatewayTrace(id: id, workspace: context.workspace) else {
                throw LoomError.notFound("No gateway trace \(id) in workspace \(context.workspace)")
            }
            return try Self.respond(TraceBody(t, full: true))
        }

        let c = Self.prefix + "/catalog"
        routes.get(c) { request, context in
            try await auth.requireRole(context, .viewer)
            let provider = request.uri.queryParameters["provider"].map(String.init)
            return try Self.respond(Listing(
                items: try await store.catalogModels(workspace: context.workspace, provider: provider).map(CatalogBody.init), nextPageToken: nil))
        }
        routes.post("\(c)/sync") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let changed = try await service.syncCatalog(workspace: context.workspace, provider: try body.string("provider"))
            return try Self.respond(Listing(items: changed.map(CatalogBody.init), nextPageToken: nil))
        }
        // Adds or edits one entry by hand.
        routes.put("\(c)/:provider/:model") { request, context in
            let provider = try Self.param(context, "provider")
            let model = try Self.param(context, "model")
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let status = try body.string("status") ?? "available"
            guard CatalogModel.statuses.contains(status) else {
                throw LoomError.invalidParameter("status is one of \(CatalogModel.statuses.joined(separator: ", ")), not \(status)")
            }
            func price(_ key: String) throws -> Double? {
                try body.double(key).map { v in
                    guard v >= 0, v.isFinite else { throw LoomError.invalidParameter("\(key) must be 0 or more") }
                    return v
                }
            }
            let entry = CatalogModel(
                workspace: context.workspace, provider: provider, model: model, capabilities: try body.strings("capabilities"),
                contextLength: try Self.positive(body.int64("context_length"), "context_length"), inputPrice: try price("input_price_per_million"),
                outputPrice: try price("output_price_per_million"), license: try body.string("license"), status: status,
                deprecationDate: try body.string("deprecation_date"), description: try body.string("description") ?? "", source: "manual",
                lastUpdatedTime: Clock.nowMillis())
            try await service.setCatalogModel(entry)
            return try Self.respond(CatalogBody(entry))
        }
        routes.delete("\(c)/:provider/:model") { _, context in
            let provider = try Self.param(context, "provider")
            let model = try Self.param(context, "model")
            try await auth.requireRole(context, .editor)
            guard try await store.deleteCatalogModel(provider: provider, model: model, workspace: context.workspace) else {
                throw LoomError.notFound("No catalog entry \(provider)/\(model) in workspace \(context.workspace)")
            }
            try await service.gateway.reload()
            return Self.noContent
        }
    }

    static func positive(_ value: Int64?, _ key: String) throws -> Int64? {
        guard let value else { return nil }
        guard value > 0 else { throw LoomError.invalidParameter("\(key) must be above 0") }
        return value
    }

    /// A `YYYY-MM-DD` day.
    static func day(_ s: String, _ key: String) throws -> String {
        let parts = s.split(separator: "-")
        guard s.count == 10, parts.count == 3, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
            (1970...9999).contains(y), (1...12).contains(m), (1...31).contains(d)
        else { throw LoomError.invalidParameter("\(key) must be a day as YYYY-MM-DD, not \(s)") }
        return s
    }
}
