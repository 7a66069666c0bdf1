import AsyncHTTPClient
import Foundation
import LoomCore
import LoomGenAI
import LoomSpec
import LoomStore
import LoomTracking
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The LLM gateway's management (docs/gateway.md): applies providers and routes (checked
/// against each other), issues and revokes gateway keys, keeps the model catalog, and runs the
/// gateway's background work: its table reloaded from the store (what other replicas applied),
/// and usage written in batches.
public final class GatewayService: Service, Sendable {
    public let gateway: Gateway
    public let prompts: PromptService
    /// Grounding indexes (docs/indexes.md), embedded through the gateway.
    public let indexes: IndexService
    /// Runs flows (docs/flows.md) over the gateway and the indexes.
    public let flows: FlowRunner
    /// Runs evaluations of flows (docs/evaluation.md).
    public let evaluations: EvaluationRunner
    /// Flows stored by name and version.
    public let flowLibrary: FlowLibrary
    /// Stored, resumable evaluation runs.
    public let evaluationRuns: EvaluationService
    let store: any MetadataStore
    let tracking: TrackingService
    /// Flows that `flow` deployments serve, parsed (by workspace and `NAME@VERSION`).
    let servedFlows = Mutex<[String: FlowSpec]>([:])
    let client: HTTPClient
    let logger: Logger
    let reloadSeconds: Double
    let flushSeconds: Double
    /// Traces older than this many days are deleted (0: kept).
    let traceRetentionDays: Double
    /// Where finished traces are also sent (OTLP/HTTP), if anywhere.
    let exporter: OTLPExporter?

    public init(
        tracking: TrackingService, logger: Logger, reloadSeconds: Double = 5, flushSeconds: Double = 2, traceRetentionDays: Double = 7,
        otlpEndpoint: String? = nil, sourcesRoot: String? = nil, secrets: @escaping @Sendable () -> SecretSource = { SecretSource() }
    ) {
        self.traceRetentionDays = traceRetentionDays
        if let otlpEndpoint, !otlpEndpoint.isEmpty {
            self.exporter = OTLPExporter(endpoint: otlpEndpoint, client: Self.sharedClient, logger: logger)
        } else {
            self.exporter = nil
        }
        let client = Self.sharedClient
        self.client = client
        self.store = tracking.store
        self.tracking = tracking
        self.logger = logger
        self.reloadSeconds = reloadSeconds
        self.flushSeconds = flushSeconds
        self.prompts = PromptService(tracking: tracking)
        var onTraces: (@Sendable ([GatewayTrace]) async -> Void)?
        if let exporter = self.exporter {
            onTraces = { traces in await exporter.export(traces) }
        }
        self.gateway = Gateway(store: tracking.store, client: client, logger: logger, secrets: secrets, prompts: prompts, onTraces: onTraces)
        self.indexes = IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: gateway, sourcesRoot: sourcesRoot, logger: logger)
        self.flows = FlowRunner(gateway: gateway, indexes: indexes, client: client)
        self.evaluations = EvaluationRunner(flows: flows, gateway: gateway)
        self.flowLibrary = FlowLibrary(store: tracking.store)
        self.evaluationRuns = EvaluationService(runner: evaluations, store: tracking.store, logger: logger)
    }

    /// The process's client for providers (like `HTTPClient.shared`, never shut down), with room
    /// for many connections per provider: a stream holds one for as long as it runs.
    static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        configuration.timeout = .init(connect: .seconds(10))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public func run() async throws {
        do {
            try await gateway.reload()
        } catch {
            logger.warning("gateway: table not loaded yet (\(error))")
        }
        var lastReload = ContinuousClock.now
        var lastPrune = ContinuousClock.now - .seconds(3600)
        var lastSchedules = ContinuousClock.now - .seconds(3600)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(min(flushSeconds, reloadSeconds)))
            // Thousands of traces at a time at high load: written behind the event loops.
            await BackgroundExecutor.run { await gateway.flushUsage(settle: false) }
            if traceRetentionDays > 0, ContinuousClock.now - lastPrune >= .seconds(3600) {
                lastPrune = .now
                let cutoff = Clock.nowMillis() - Millis(traceRetentionDays * 86_400_000)
                if let n = try? await store.deleteGatewayTraces(before: cutoff), n > 0 {
                    logger.info("gateway: deleted \(n) traces older than \(traceRetentionDays) days")
                }
            }
            if ContinuousClock.now - lastSchedules >= .seconds(20) {
                lastSchedules = .now
                // Builds run in their own task: a long one holds neither usage nor reloads back.
                let indexes = self.indexes
                Task { await indexes.refreshDue() }
            }
            if ContinuousClock.now - lastReload >= .seconds(reloadSeconds) {
                lastReload = .now
                do {
                    try await gateway.reload()
                } catch {
                    logger.warning("gateway: reload failed (\(error)); the previous table stays")
                }
            }
        }
        await gateway.flushUsage()
    }

    // MARK: Providers and routes

    /// Checks a `kind: provider` or `kind: route` spec whole and makes it the workspace's resource
    /// of its name. A route's providers must exist; a provider must be able to serve the route's task.
    public func apply(yaml: String, workspace: String, actor: String, now: Millis = Clock.nowMillis()) async throws -> (GatewayResource, changed: Bool) {
        guard let kind = gatewaySpecKind(yaml) else { throw LoomError.invalidParameter("The spec's kind must be provider, route or policy") }
        let name: String
        switch kind {
        case .provider:
            name = try ProviderSpec.parse(yaml: yaml).name
        case .route:
            let spec = try RouteSpec.parse(yaml: yaml)
            name = spec.name
            let providers = try await providerSpecs(workspace: workspace)
            for target in spec.targets + spec.fallbacks {
                guard let p = providers[target.provider] else {
                    throw LoomError.invalidParameter("route \(spec.name): no provider named \(target.provider) in workspace \(workspace) (apply it first)")
                }
                if spec.task == .embeddings && p.kind == .anthropic {
                    throw LoomError.invalidParameter("route \(spec.name): provider \(p.name) (anthropic) has no embeddings API")
                }
            }
            let policies = Set(try await store.gatewayResources(workspace: workspace, kind: .policy).map(\.name))
            if let missing = spec.policies.first(where: { !policies.contains($0) }) {
                throw LoomError.invalidParameter("route \(spec.name): no policy named \(missing) in workspace \(workspace) (apply it first)")
            }
            if let reference = spec.prompt {
                do {
                    _ = try await prompts.version(reference, workspace: workspace)
                } catch let e as LoomError {
                    throw LoomError.invalidParameter("route \(spec.name) binds the prompt \(reference): \(e.message)")
                }
            }
        case .policy:
            let spec = try PolicySpec.parse(yaml: yaml)
            name = spec.name
            let providers = try await providerSpecs(workspace: workspace)
            for provider in spec.moderationProviders {
                guard let p = providers[provider] else {
                    throw LoomError.invalidParameter("policy \(spec.name): no provider named \(provider) in workspace \(workspace) for its moderation rule")
                }
                guard p.kind == .openai || p.kind == .openaiCompatible else {
                    throw LoomError.invalidParameter("policy \(spec.name): provider \(provider) (\(p.kind.rawValue)) has no moderation endpoint")
                }
            }
        }
        let (saved, changed) = try await store.applyGatewayResource(
            GatewayResource(workspace: workspace, kind: kind, name: name, specText: yaml, createdBy: actor, creationTime: now))
        if changed {
            try await gateway.reload()
        }
        return (saved, changed)
    }

    func providerSpecs(workspace: String) async throws -> [String: ProviderSpec] {
        var out: [String: ProviderSpec] = [:]
        for r in try await store.gatewayResources(workspace: workspace, kind: .provider) {
            if let spec = try? ProviderSpec.parse(yaml: r.specText) { out[spec.name] = spec }
        }
        return out
    }

    /// Deletes a provider or a policy (refused while a route uses it) or a route.
    public func delete(kind: GatewayResource.Kind, name: String, workspace: String) async throws {
        if kind != .route {
            for r in try await store.gatewayResources(workspace: workspace, kind: .route) {
                guard let spec = try? RouteSpec.parse(yaml: r.specText) else { continue }
                if kind == .provider ? spec.providers.contains(name) : spec.policies.contains(name) {
                    throw LoomError.invalidState("\(kind == .provider ? "Provider" : "Policy") \(name) is used by route \(spec.name): change or delete the route first")
                }
            }
        }
        if kind == .provider {
            for r in try await store.gatewayResources(workspace: workspace, kind: .policy) {
                if let spec = try? PolicySpec.parse(yaml: r.specText), spec.moderationProviders.contains(name) {
                    throw LoomError.invalidState("Provider \(name) is used by policy \(spec.name)'s moderation: change or delete the policy first")
                }
            }
        }
        guard try await store.deleteGatewayResource(kind: kind, name: name, workspace: workspace) else {
            throw LoomError.notFound("No \(kind.rawValue) named \(name) in workspace \(workspace)")
        }
        try await gateway.reload()
    }

    // MARK: Keys

    /// A new key: its record, and the secret (shown once, stored only as a hash).
    public func createKey(
        name: String, routes: [String], limits: RouteSpec.Limits, workspace: String, actor: String, now: Millis = Clock.nowMillis()
    ) async throws -> (GatewayKey, secret: String) {
        guard SpecNodeReader.isName(name) else { throw LoomError.invalidParameter("A key's name starts with a letter and holds letters, digits, _ or - (at most 64)") }
        let known = Set(try await store.gatewayResources(workspace: workspace, kind: .route).map(\.name))
        if let unknown = routes.first(where: { !known.contains($0) }) {
            throw LoomError.invalidParameter("No route named \(unknown) in workspace \(workspace)")
        }
        let secret = GatewayKeys.newSecret()
        let key = GatewayKey(
            id: "gk-" + Identifiers.newHexID().prefix(16), workspace: workspace, name: name, prefix: String(secret.prefix(10)), keyHash: GatewayKeys.hash(secret),
            routes: routes, requestsPerMinute: limits.requestsPerMinute, tokensPerMinute: limits.tokensPerMinute, spendPerDay: limits.spendPerDay,
            createdBy: actor, creationTime: now)
        let saved = try await store.createGatewayKey(key)
        try await gateway.reload()
        return (saved, secret)
    }

    public func revokeKey(id: String, workspace: String) async throws {
        guard try await store.revokeGatewayKey(id: id, workspace: workspace, time: Clock.nowMillis()) else {
            throw LoomError.notFound("No active gateway key \(id) in workspace \(workspace)")
        }
        try await gateway.reload()
    }

    // MARK: Catalog

    public func setCatalogModel(_ model: CatalogModel) async throws {
        guard try await providerSpecs(workspace: model.workspace)[model.provider] != nil else {
            throw LoomError.invalidParameter("No provider named \(model.provider) in workspace \(model.workspace)")
        }
        try await store.upsertCatalogModels([model])
        try await gateway.reload()
    }

    /// Reads providers' model listings into the catalog: new models are added (capabilities
    /// guessed from their ids, no prices), known ones keep what people entered, and synced
    /// models a provider no longer lists are marked retired.
    public func syncCatalog(workspace: String, provider only: String?) async throws -> [CatalogModel] {
        let providers = try await providerSpecs(workspace: workspace)
        if let only, providers[only] == nil { throw LoomError.notFound("No provider named \(only) in workspace \(workspace)") }
        let existing = try await store.catalogModels(workspace: workspace, provider: only)
        var changed: [CatalogModel] = []
        let now = Clock.nowMillis()
        for name in providers.keys.sorted() where only == nil || only == name {
            let listed = try await gateway.listModels(provider: name, workspace: workspace)
            let ids = Set(listed.map(\.id))
            for entry in listed {
                if var known = existing.first(where: { $0.provider == name && $0.model == entry.id }) {
                    if known.status == "retired" { known.status = "available" }
                    known.lastUpdatedTime = now
                    if known.source == "sync" && known.description.isEmpty { known.description = entry.description }
                    changed.append(known)
                } else {
                    changed.append(CatalogModel(
                        workspace: workspace, provider: name, model: entry.id, capabilities: entry.capabilities, contextLength: entry.contextLength,
                        description: entry.description, source: "sync", lastUpdatedTime: now))
                }
            }
            for var gone in existing where gone.provider == name && gone.source == "sync" && !ids.contains(gone.model) && gone.status != "retired" {
                gone.status = "retired"
                gone.lastUpdatedTime = now
                changed.append(gone)
            }
        }
        try await store.upsertCatalogModels(changed)
        try await gateway.reload()
        return changed
    }
}
