import AsyncHTTPClient
import Crypto
import Foundation
import LoomCore
import LoomForwarding
import LoomStore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// Who calls the gateway: the workspace whose routes answer, and the gateway key used (nil: a
/// server without auth, or a signed-in user).
public struct GatewayCaller: Sendable {
    public var workspace: String
    public var key: GatewayKey?
    /// The trace id of the caller's W3C `traceparent`, which the call's trace continues.
    public var traceID: String?

    /// Where a call leaves the bookkeeping that does not change its answer (usage, token counts
    /// for the limits, metrics, the trace's output and end) for the caller to run once the answer
    /// has been written; nil: the gateway does it before it answers.
    public var afterAnswer: GatewayAfterAnswer?

    public init(workspace: String, key: GatewayKey? = nil, traceParent: String? = nil, afterAnswer: GatewayAfterAnswer? = nil) {
        self.workspace = workspace
        self.key = key
        self.traceID = TraceParent.traceID(traceParent)
        self.afterAnswer = afterAnswer
    }
}

/// Bookkeeping a call leaves for after its answer has been written. The gateway's fast path
/// writes a whole answer first and then runs this, on the same event loop before it reads on:
/// the client, and the provider's next request, do not wait for it.
public final class GatewayAfterAnswer: Sendable {
    struct Left {
        var items: [@Sendable () -> Void] = []
        /// The gateway that counts what is left (`Gateway.leftForLater`).
        var gateway: Gateway?
    }

    let left = Mutex(Left())

    public init() {}

    func add(_ item: @escaping @Sendable () -> Void, counted gateway: Gateway) {
        left.withLock { left in
            // A call leaves two items (its usage, then its trace's end).
            if left.items.isEmpty { left.items.reserveCapacity(2) }
            left.items.append(item)
            left.gateway = gateway
        }
    }

    /// Runs what the call left, in the order it was left (once).
    public func run() {
        let taken = left.withLock { left in
            defer { left = Left() }
            return left
        }
        guard let gateway = taken.gateway else { return }
        for item in taken.items { item() }
        gateway.leftForLater.subtract(taken.items.count, ordering: .releasing)
    }
}

/// The gateway's answer: a whole body, or a stream that the HTTP layer relays as it comes.
public enum GatewayAnswer: Sendable {
    case complete(body: [UInt8], headers: [(String, String)])
    case stream(GatewayStream, headers: [(String, String)])
}

/// What `/v1/models` lists: the workspace's routes.
public struct GatewayModel: Sendable {
    public var name: String
    public var task: RouteSpec.Task
    public var created: Millis
}

/// The LLM gateway (docs/gateway.md): OpenAI-compatible chat completions and embeddings
/// answered by the workspace's routes, each a weighted split over provider models with ordered
/// fallbacks, retries that respect `Retry-After`, rate limits and budgets, an opt-in exact-match
/// cache, and usage and cost accounting. Reads its providers, routes, keys and prices from an
/// in-memory table that `reload()` rebuilds from the store.
public final class Gateway: Sendable {
    struct LiveRoute: Sendable {
        let workspace: String
        let spec: RouteSpec
        let created: Millis
        let version: Int64
        let totalWeight: Int
        /// The route's policies, compiled.
        let policies: PolicySet
        /// Policies the route names that cannot be read: it answers 503 rather than run unchecked.
        let missingPolicies: [String]
        /// The route's rate-limit and budget scope, and how a refusal names it (made once, not per call).
        let scope: String
        let scopeName: String

        init(
            workspace: String, spec: RouteSpec, created: Millis, version: Int64, totalWeight: Int, policies: PolicySet, missingPolicies: [String]
        ) {
            (self.workspace, self.spec, self.created, self.version, self.totalWeight) = (workspace, spec, created, version, totalWeight)
            (self.policies, self.missingPolicies) = (policies, missingPolicies)
            scope = "route:" + Gateway.id(workspace, spec.name)
            scopeName = "route \(spec.name)"
        }
    }

    struct Table: Sendable {
        var providers: [String: ResolvedProvider] = [:]
        var routes: [String: LiveRoute] = [:]
        var keys: [String: GatewayKey] = [:]
        var catalog: [String: CatalogModel] = [:]
    }

    static func id(_ workspace: String, _ name: String) -> String { workspace + "\u{1F}" + name }

    let store: any MetadataStore
    let client: HTTPClient
    let logger: Logger
    let secrets: @Sendable () -> SecretSource
    let prompts: (any PromptSource)?
    /// Prompt versions routes bind, kept a few seconds (an alias moved elsewhere is followed
    /// within `promptSeconds`; one moved through this server at once).
    let promptCache = Mutex<[String: (prompt: ResolvedPrompt, expires: Double)]>([:])
    let promptSeconds: Double
    /// Called with each batch of finished traces after it is stored (the OTLP export).
    let onTraces: (@Sendable ([GatewayTrace]) async -> Void)?
    let table = Mutex(Table())
    let limiter = RateLimiter()
    /// Each route's cache, for the route's version: a changed route starts empty.
    let caches = Mutex<[String: (version: Int64, cache: ResponseCache)]>([:])
    let meter = UsageMeter()
    /// The day and workspaces whose budgets have been read from the store.
    let seeded = Mutex<(day: String, workspaces: Set<String>)>(("", []))
    /// Pooled raw HTTP/1.1 connections for whole answers from plain-HTTP providers.
    let forwarding = ForwardingClient()
    let traces = TraceRecorder()
    /// Bookkeeping left for after answers (`later`) and not run yet: a query of usage or traces
    /// waits for it (`flushUsage`), so it finds every call whose answer has been written.
    let leftForLater = Atomic<Int>(0)
    /// How long a query waits for that bookkeeping at most.
    let settleLimit: Duration
    let metrics = GatewayMetrics()
    /// The longest answer body read from a provider.
    static let answerLimit = 32 << 20

    public init(
        store: any MetadataStore, client: HTTPClient, logger: Logger, secrets: @escaping @Sendable () -> SecretSource = { SecretSource() },
        prompts: (any PromptSource)? = nil, promptSeconds: Double = 5, onTraces: (@Sendable ([GatewayTrace]) async -> Void)? = nil,
        settleLimit: Duration = .milliseconds(100)
    ) {
        self.onTraces = onTraces
        self.settleLimit = settleLimit
        self.prompts = prompts
        self.promptSeconds = promptSeconds
        self.store = store
        self.client = client
        self.logger = logger
        self.secrets = secrets
    }

    // MARK: Table

    /// Rebuilds the table from the store: providers (with their keys read again), routes, keys,
    /// catalog prices; and today's spend per route and key, for the budgets.
    public func reload(now: Millis = Clock.nowMillis()) async throws {
        let resources = try await store.gatewayResources(workspace: nil, kind: nil)
        let keys = try await store.gatewayKeys(workspace: nil)
        let catalog = try await store.catalogModels(workspace: nil, provider: nil)
        let source = secrets()
        var next = Table()
        var policies: [String: PolicySpec] = [:]
        for r in resources where r.kind == .policy {
            guard let spec = try? PolicySpec.parse(yaml: r.specText) else {
                logger.warning("gateway: policy \(r.name) in workspace \(r.workspace) no longer parses; skipped")
                continue
            }
            policies[Self.id(r.workspace, spec.name)] = spec
        }
        for r in resources {
            switch r.kind {
            case .provider:
                guard let spec = try? ProviderSpec.parse(yaml: r.specText) else {
                    logger.warning("gateway: provider \(r.name) in workspace \(r.workspace) no longer parses; skipped")
                    continue
                }
                next.providers[Self.id(r.workspace, spec.name)] = ResolvedProvider(spec: spec, secrets: source)
            case .route:
                guard let spec = try? RouteSpec.parse(yaml: r.specText) else {
                    logger.warning("gateway: route \(r.name) in workspace \(r.workspace) no longer parses; skipped")
                    continue
                }
                next.routes[Self.id(r.workspace, spec.name)] = LiveRoute(
                    workspace: r.workspace, spec: spec, created: r.creationTime, version: r.version, totalWeight: spec.targets.reduce(0) { $0 + $1.weight },
                    policies: PolicySet(spec.policies.compactMap { policies[Self.id(r.workspace, $0)] }),
                    missingPolicies: spec.policies.filter { policies[Self.id(r.workspace, $0)] == nil })
            case .policy:
                break
            }
        }
        for k in keys where k.revokedTime == nil { next.keys[k.keyHash] = k }
        for m in catalog { next.catalog[m.workspace + "\u{1F}" + m.provider + "\u{1F}" + m.model] = m }
        let day = UTCDay.string(millis: now)
        // Budgets start from the store's sums once per day and workspace; after that this
        // replica adds its own spend (reading the sums at every reload would only repeat it).
        let unseeded = seeded.withLock { seen -> Set<String> in
            if seen.day != day { seen = (day, []) }
            let fresh = Set(resources.map(\.workspace)).subtracting(seen.workspaces)
            seen.workspaces.formUnion(fresh)
            return fresh
        }
        for workspace in unseeded {
            var byRoute: [String: Double] = [:]
            var byKey: [String: Double] = [:]
            for row in try await store.gatewayUsage(workspace: workspace, fromDay: day, toDay: day) {
                byRoute[row.route, default: 0] += row.cost
                if !row.key.isEmpty { byKey[row.key, default: 0] += row.cost }
            }
            for (route, cost) in byRoute { meter.seed("route:" + Self.id(workspace, route), day: day, amount: cost) }
            for (key, cost) in byKey { meter.seed("key:" + key, day: day, amount: cost) }
        }
        table.withLock { $0 = next }
        caches.withLock { caches in
            caches = caches.filter { id, entry in next.routes[id]?.version == entry.version }
        }
    }

    func cache(for route: LiveRoute) -> ResponseCache {
        let id = Self.id(route.workspace, route.spec.name)
        return caches.withLock { caches in
            if let entry = caches[id], entry.version == route.version { return entry.cache }
            let cache = ResponseCache()
            caches[id] = (route.version, cache)
            return cache
        }
    }

    /// Why each of a workspace's providers cannot be called (its key is missing), by name.
    public func providerProblems(workspace: String) -> [String: String] {
        table.withLock { t in
            var out: [String: String] = [:]
            for p in t.providers.values where p.keyProblem != nil && t.providers[Self.id(workspace, p.spec.name)] != nil {
                out[p.spec.name] = p.keyProblem
            }
            return out
        }
    }

    /// The key whose secret is `secret` (not revoked), if any.
    public func key(secret: String) -> GatewayKey? {
        let hash = GatewayKeys.hash(secret)
        return table.withLock { $0.keys[hash] }
    }

    /// The routes a caller may use, by name.
    public func models(for caller: GatewayCaller) -> [GatewayModel] {
        table.withLock { t in
            t.routes.values.filter { $0.workspace == caller.workspace && (caller.key?.allows(route: $0.spec.name) ?? true) }
                .map { GatewayModel(name: $0.spec.name, task: $0.spec.task, created: $0.created) }
                .sorted { $0.name < $1.name }
        }
    }

    // MARK: Calls

    /// `POST /v1/chat/completions`.
    public func chat(_ bytes: [UInt8], caller: GatewayCaller) async throws(GatewayError) -> GatewayAnswer {
        try await traced(caller, task: "chat") { trace throws(GatewayError) in try await self.chat(bytes, caller: caller, trace: trace) }
    }

    /// `POST /v1/embeddings`.
    public func embeddings(_ bytes: [UInt8], caller: GatewayCaller) async throws(GatewayError) -> GatewayAnswer {
        try await traced(caller, task: "embeddings") { trace throws(GatewayError) in try await self.embeddings(bytes, caller: caller, trace: trace) }
    }

    /// Runs a call with its trace: `x-loom-trace-id` on the answer (errors too), and the trace
    /// recorded when the call ends (a stream's when it has been relayed).
    func traced(
        _ caller: GatewayCaller, task: String, _ body: (TraceBuilder) async throws(GatewayError) -> GatewayAnswer
    ) async throws(GatewayError) -> GatewayAnswer {
        let trace = TraceBuilder(caller: caller, task: task)
        let header = ("x-loom-trace-id", trace.id)
        do {
            switch try await body(trace) {
            case .complete(let b, let headers):
                later(caller) { self.traces.add(trace.finish(status: 200, error: nil)) }
                return .complete(body: b, headers: headers + [header])
            case .stream(let s, let headers):
                return .stream(s, headers: headers + [header])
            }
        } catch {
            traces.add(trace.finish(status: error.status, error: error.message))
            var e = error
            e.headers.append(header)
            throw e
        }
    }

    /// Runs `work` after the call's answer has been written when the caller takes such work
    /// (`GatewayCaller.afterAnswer`), else now.
    func later(_ caller: GatewayCaller, _ work: @escaping @Sendable () -> Void) {
        guard let after = caller.afterAnswer else { return work() }
        leftForLater.add(1, ordering: .relaxed)
        after.add(work, counted: self)
    }

    func chat(_ bytes: [UInt8], caller: GatewayCaller, trace: TraceBuilder) async throws(GatewayError) -> GatewayAnswer {
        let parsed = try Self.object(bytes)
        var body = parsed.body
        let repeatedNames = parsed.repeatedNames
        let (route, model) = try routeFor(body, caller: caller, task: .chat)
        trace.update { $0.route = route.spec.name; $0.workspace = route.workspace }
        var prompted: ResolvedPrompt?
        if let reference = route.spec.prompt {
            let started = ContinuousClock.now
            let prompt = try await prompt(reference, route: route)
            try Self.apply(prompt, to: &body)
            prompted = prompt
            trace.span("prompt", since: started, ["prompt": .string("\(prompt.name)@\(prompt.version)")])
        } else if body["prompt_variables"] != nil {
            throw .invalid("The route `\(model)` binds no prompt: prompt_variables is not used.", param: "prompt_variables")
        }
        guard let messages = body["messages"]?.arrayValue, !messages.isEmpty else {
            throw .invalid(body["messages"] == nil ? "Missing required parameter: 'messages'." : "'messages' must be a non-empty array of messages.", param: "messages")
        }
        for (i, m) in messages.enumerated() {
            guard case .object(let o) = m, let role = o["role"]?.stringValue else {
                throw .invalid("messages[\(i)] must be an object with a 'role'.", param: "messages[\(i)]")
            }
            guard ["system", "developer", "user", "assistant", "tool", "function"].contains(role) else {
                throw .invalid("Invalid value for 'messages[\(i)].role': '\(role)'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.", param: "messages[\(i)].role")
            }
        }
        var stream = false
        switch body["stream"] {
        case nil, .null?: break
        case .bool(let b)?: stream = b
        default: throw .invalid("'stream' must be a boolean.", param: "stream")
        }
        let includeUsage = body["stream_options"]?["include_usage"] == .bool(true)
        if stream, route.policies.applies(to: .output), let n = body["n"]?.doubleValue, n > 1 {
            throw .invalid("A streamed request with n > 1 cannot be checked by the route's output policies: ask for one choice, or do not stream.", param: "n")
        }
        trace.update { $0.stream = stream }
        var changed = prompted != nil
        let decisions = route.policies.applies(to: .input) ? try await guardInput(&body, route: route, trace: trace, changed: &changed) : []
        let raw = passOn(bytes, unchanged: !changed && !repeatedNames, content: "messages", parsed: body["messages"], trace: trace)
        let answer = try await call(
            route: route, publicModel: model, caller: caller, body: body, raw: raw, stream: stream, includeUsage: includeUsage,
            inputDecisions: decisions, trace: trace)
        guard let prompted else { return answer }
        let header = ("x-loom-prompt", "\(prompted.name)@\(prompted.version)")
        switch answer {
        case .complete(let b, let headers): return .complete(body: b, headers: headers + [header])
        case .stream(let s, let headers): return .stream(s, headers: headers + [header])
        }
    }

    /// The version a route's prompt reference means now.
    func prompt(_ reference: PromptReference, route: LiveRoute) async throws(GatewayError) -> ResolvedPrompt {
        let key = Self.id(route.workspace, reference.description)
        let now = Double(Clock.nowMillis()) / 1000
        if let hit = promptCache.withLock({ $0[key] }), hit.expires > now { return hit.prompt }
        guard let prompts else { throw GatewayError(status: 503, type: "api_error", message: "This server has no prompt registry.") }
        do {
            let resolved = try await prompts.prompt(reference, workspace: route.workspace)
            promptCache.withLock { $0[key] = (resolved, now + promptSeconds) }
            return resolved
        } catch {
            throw GatewayError(
                status: 503, type: "api_error", code: "prompt_unavailable",
                message: "The route `\(route.spec.name)` binds the prompt \(reference), which cannot be read: \((error as? LoomError)?.message ?? "\(error)")")
        }
    }

    /// Forgets the prompt versions kept (an alias moved).
    public func forgetPrompts() { promptCache.withLock { $0.removeAll() } }

    /// Puts a prompt's rendered messages before the client's (a text prompt is the system
    /// message) and fills the model settings the client did not give from its `model_config`.
    static func apply(_ prompt: ResolvedPrompt, to body: inout [String: JSONValue]) throws(GatewayError) {
        var values: [String: JSONValue] = [:]
        switch body.removeValue(forKey: "prompt_variables") {
        case nil, .null?: break
        case .object(let o)?: values = o
        default: throw .invalid("'prompt_variables' must be an object of the prompt's {{variables}}.", param: "prompt_variables")
        }
        let rendered: [PromptContent.Message]
        do {
            rendered = try prompt.content.render(values, textRole: "system")
        } catch {
            throw .invalid("\(error.message) (prompt \(prompt.name) version \(prompt.version); pass them as prompt_variables)", param: "prompt_variables")
        }
        let given: [JSONValue]
        switch body["messages"] {
        case nil, .null?: given = []
        case .array(let a)?: given = a
        default: throw .invalid("'messages' must be an array of messages.", param: "messages")
        }
        body["messages"] = .array(rendered.map { .object(["role": .string($0.role), "content": .string($0.content)]) } + given)
        let config = prompt.content.modelConfig
        for key in ["temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty", "seed"] where body[key] == nil {
            if let v = config[key] { body[key] = v }
        }
        if body["stop"] == nil, let stop = config["stop_sequences"] ?? config["stop"] { body["stop"] = stop }
        for (k, v) in config["extra_params"]?.objectValue ?? [:] where body[k] == nil { body[k] = v }
    }

    func embeddings(_ bytes: [UInt8], caller: GatewayCaller, trace: TraceBuilder) async throws(GatewayError) -> GatewayAnswer {
        let (body, repeatedNames) = try Self.object(bytes)
        let (route, model) = try routeFor(body, caller: caller, task: .embeddings)
        trace.update { $0.route = route.spec.name; $0.workspace = route.workspace }
        switch body["input"] {
        case .string?: break
        case .array(let items)? where !items.isEmpty: break
        case nil: throw .invalid("Missing required parameter: 'input'.", param: "input")
        default: throw .invalid("'input' must be a string or a non-empty array of strings or token arrays.", param: "input")
        }
        var checked = body
        var changed = false
        let decisions = route.policies.applies(to: .input) ? try await guardInput(&checked, route: route, trace: trace, changed: &changed) : []
        let raw = passOn(bytes, unchanged: !changed && !repeatedNames, content: "input", parsed: checked["input"], trace: trace)
        return try await call(
            route: route, publicModel: model, caller: caller, body: checked, raw: raw, stream: false, includeUsage: false,
            inputDecisions: decisions, trace: trace)
    }

    /// The request's body, and whether it names a member twice anywhere (then it is never passed
    /// on as written: the provider's reader might keep the first where the policies read the last).
    static func object(_ bytes: [UInt8]) throws(GatewayError) -> (body: [String: JSONValue], repeatedNames: Bool) {
        let value: JSONValue
        var repeated = false
        do {
            value = try JSONValue.parse(bytes, repeatedNames: &repeated)
        } catch {
            throw .invalid("We could not parse the JSON body of your request. (\(error.message))")
        }
        guard case .object(let o) = value else { throw .invalid("The request body must be a JSON object.") }
        return (o, repeated)
    }

    /// The client's bytes ready to pass on (`RawRequest`) when the body is what they say: no
    /// prompt or redaction changed it and no member is named twice. The trace keeps the text of
    /// `content` as written then, else `parsed` made text.
    func passOn(_ bytes: [UInt8], unchanged: Bool, content key: String, parsed: JSONValue?, trace: TraceBuilder) -> RawRequest? {
        let raw = unchanged ? RawRequest(bytes, content: key) : nil
        if let raw, let content = raw.content {
            trace.setInput(text: raw.bytes[content])
        } else {
            trace.setInput(parsed ?? .null, bodyBytes: bytes.count)
        }
        return raw
    }

    func routeFor(_ body: [String: JSONValue], caller: GatewayCaller, task: RouteSpec.Task) throws(GatewayError) -> (LiveRoute, String) {
        guard let value = body["model"] else { throw .invalid("Missing required parameter: 'model'.", param: "model") }
        guard let model = value.stringValue else { throw .invalid("'model' must be a string.", param: "model") }
        guard let route = table.withLock({ $0.routes[Self.id(caller.workspace, model)] }) else { throw .modelNotFound(model) }
        if let key = caller.key, !key.allows(route: model) {
            throw .forbidden("The gateway key \(key.name) may not call `\(model)` (it may call: \(key.routes.joined(separator: ", "))).")
        }
        guard route.missingPolicies.isEmpty else {
            throw GatewayError(
                status: 503, type: "api_error", code: "policy_unavailable",
                message: "The route `\(model)` names policies that cannot be read (\(route.missingPolicies.joined(separator: ", "))): it is closed until they are fixed.")
        }
        guard route.spec.task == task else {
            throw .invalid("The model `\(model)` is a \(route.spec.task.rawValue) route: call /v1/\(route.spec.task == .chat ? "chat/completions" : "embeddings").", param: "model")
        }
        return (route, model)
    }

    /// One call through a route: limits, cache, then the picked target and the fallbacks, each
    /// with its retries. `raw` is the client's body when `body` is what it says (no prompt, no
    /// redaction): a provider that takes OpenAI's shape gets it with only the model changed.
    func call(
        route: LiveRoute, publicModel: String, caller: GatewayCaller, body: [String: JSONValue], raw: RawRequest? = nil, stream: Bool, includeUsage: Bool,
        inputDecisions: [PolicyDecision] = [], trace: TraceBuilder
    ) async throws(GatewayError) -> GatewayAnswer {
        let started = ContinuousClock.now
        let nowMillis = Clock.nowMillis()
        let now = Double(nowMillis) / 1000
        let day = UTCDay.string(millis: nowMillis)
        var scopes = [RateLimiter.Scope(id: route.scope, what: route.scopeName, limits: route.spec.limits, spentToday: meter.spent(route.scope, day: day))]
        if let key = caller.key {
            let limits = RouteSpec.Limits(requestsPerMinute: key.requestsPerMinute, tokensPerMinute: key.tokensPerMinute, spendPerDay: key.spendPerDay)
            scopes.append(RateLimiter.Scope(id: "key:" + key.id, what: "gateway key \(key.name)", limits: limits, spentToday: meter.spent("key:" + key.id, day: day)))
        }
        var headers: [(String, String)]
        switch limiter.admit(scopes, now: now) {
        case .success(let h):
            headers = h
            // The route, provider, model, attempts, cost, policy and trace headers follow.
            headers.reserveCapacity(h.count + 8)
        case .failure(let e):
            metrics.refused(route: route.spec.name)
            trace.span("rate_limit", since: started, ["refused": .string(e.message)])
            throw e
        }
        let usageScopes = scopes.map(\.id)
        let record: @Sendable (RouteSpec.Target, TokenUsage?, Bool, Bool) -> Double = { target, usage, failed, cached in
            let cost = self.record(route: route, caller: caller, target: target, usage: usage, failed: failed, cached: cached, day: day, scopes: usageScopes)
            guard !failed else { return cost }
            trace.update { s in
                s.provider = target.provider
                s.model = target.model
                if !cached, let usage { s.usage = usage }
                s.cost = cost
            }
            return cost
        }

        var cached: (key: String, cache: ResponseCache)?
        if route.spec.cache != nil, !stream {
            let key = Self.cacheKey(route: route, body: body)
            let cache = cache(for: route)
            cached = (key, cache)
            let lookedUp = ContinuousClock.now
            if let hit = cache.get(key, now: now) {
                trace.span("cache", since: lookedUp, ["hit": .bool(true)])
                headers.append(("x-loom-cache", "hit"))
                headers.append(("x-loom-route", route.spec.name))
                _ = record(hit.target, hit.usage, false, true)
                let (answer, outputDecisions) = await guardOutput(hit.body, route: route, trace: trace)
                if let h = Self.policyHeader(inputDecisions + outputDecisions) { headers.append(h) }
                metrics.latency(route: route.spec.name, since: started)
                trace.setOutput(answer)
                return .complete(body: answer, headers: headers)
            }
            headers.append(("x-loom-cache", "miss"))
            trace.span("cache", since: lookedUp, ["hit": .bool(false)])
        }

        let candidates = Self.candidates(route)
        var last: Failure?
        var attempts = 0
        for target in candidates {
            let provider = table.withLock { $0.providers[Self.id(route.workspace, target.provider)] }
            guard let provider else {
                last = Failure(status: 503, message: "provider \(target.provider) is not defined in workspace \(route.workspace)", retryAfter: nil, kind: .unavailable)
                continue
            }
            if let problem = provider.keyProblem {
                last = Failure(status: 503, message: problem, retryAfter: nil, kind: .unavailable)
                continue
            }
            let upstream = route.spec.task == .embeddings
                ? ProviderAdapter.embeddings(body, raw: raw, model: target.model, provider: provider)
                : ProviderAdapter.chat(body, raw: raw, model: target.model, stream: stream, provider: provider)
            var backoff = route.spec.backoff
            for attempt in 0...route.spec.retries {
                attempts += 1
                let attemptStarted = ContinuousClock.now
                let outcome = await send(upstream, provider: provider, target: target, route: route, stream: stream)
                var attempted: [String: JSONValue] = ["provider": .string(target.provider), "model": .string(target.model), "attempt": .int(Int64(attempts))]
                switch outcome {
                case .answered(let response): attempted["status"] = .int(Int64(response.status.code))
                case .body: attempted["status"] = .int(200)
                case .failed(let f):
                    attempted["status"] = .int(Int64(f.status))
                    attempted["error"] = .string(f.message)
                }
                trace.span("attempt", since: attemptStarted, attempted)
                switch outcome {
                case .answered, .body:
                    headers += [("x-loom-route", route.spec.name), ("x-loom-provider", target.provider), ("x-loom-model", target.model), ("x-loom-attempts", String(attempts))]
                    if stream, case .answered(let response) = outcome {
                        metrics.latency(route: route.spec.name, since: started)
                        if let h = Self.policyHeader(inputDecisions) { headers.append(h) }
                        let metrics = self.metrics
                        let routeName = route.spec.name
                        let relay = GatewayStream(
                            response: response, kind: provider.spec.kind, model: target.model, includeUsage: includeUsage,
                            guard: route.policies.applies(to: .output) ? StreamGuard(route.policies) : nil,
                            decided: { decisions in
                                metrics.decisions(decisions, route: routeName)
                                trace.update { $0.spans.append(TraceBuilder.Span(
                                    name: "policy.output", startMicros: trace.micros(.now), durationMicros: 0,
                                    attributes: ["decisions": .array(decisions.map { .string($0.summary) })])) }
                            },
                            finished: { summary in
                                _ = record(target, summary.usage, summary.failed, false)
                                if let usage = summary.usage { self.limiter.addTokens(usage.total, scopes: usageScopes, now: Double(Clock.nowMillis()) / 1000) }
                                trace.update { s in
                                    s.output = summary.output
                                    s.spans.append(TraceBuilder.Span(
                                        name: "stream", startMicros: trace.micros(summary.headAt), durationMicros: trace.micros(.now) - trace.micros(summary.headAt),
                                        attributes: ["first_event_us": .int(summary.firstEventAt.map { trace.micros($0) - trace.micros(summary.headAt) } ?? -1),
                                                     "completed": .bool(summary.completed)]))
                                }
                                self.traces.add(trace.finish(status: 200, error: summary.failed ? "the stream failed or was cut short" : nil))
                            })
                        return .stream(relay, headers: headers)
                    }
                    let (bytes, usage): ([UInt8]?, TokenUsage?)
                    switch outcome {
                    case .answered(let response): (bytes, usage) = await complete(response, provider: provider, target: target)
                    case .body(let raw): (bytes, usage) = Self.translate(raw, provider: provider, target: target)
                    case .failed: (bytes, usage) = (nil, nil)
                    }
                    guard let bytes else {
                        _ = record(target, nil, true, false)
                        last = Failure(status: 502, message: "provider \(target.provider) (model \(target.model)): the answer could not be read", retryAfter: nil, kind: .retryable)
                        break
                    }
                    // What the call cost at the catalog's prices (0 when the model has none): flows and evaluations add it up.
                    let cost = Self.cost(usage, cached: false, price: price(route: route, target: target))
                    headers.append((Self.costHeader, Self.costText(cost)))
                    if let cached, let c = route.spec.cache {
                        cached.cache.put(cached.key, body: bytes, usage: usage, target: target, ttl: c.ttl, maxEntries: c.maxEntries, now: Double(Clock.nowMillis()) / 1000)
                    }
                    let (answer, outputDecisions) = await guardOutput(bytes, route: route, trace: trace)
                    if let h = Self.policyHeader(inputDecisions + outputDecisions) { headers.append(h) }
                    // None of this changes the answer: with a caller that writes it first, it
                    // waits until the answer is on its way.
                    later(caller) {
                        _ = record(target, usage, false, false)
                        if let usage { self.limiter.addTokens(usage.total, scopes: usageScopes, now: Double(Clock.nowMillis()) / 1000) }
                        self.metrics.latency(route: route.spec.name, since: started)
                        trace.setOutput(answer)
                    }
                    return .complete(body: answer, headers: headers)
                case .failed(let failure):
                    _ = record(target, nil, true, false)
                    last = failure
                    logger.debug("gateway: \(route.spec.name) → \(target.provider)/\(target.model) attempt \(attempt + 1) failed: \(failure.status) \(failure.message)")
                    switch failure.kind {
                    case .request:
                        // The request itself is wrong for the provider: no other will take it.
                        metrics.latency(route: route.spec.name, since: started)
                        throw GatewayError(status: failure.status, type: "invalid_request_error", message: failure.message)
                    case .unavailable:
                        break
                    case .retryable:
                        guard attempt < route.spec.retries else { break }
                        var wait = min(backoff, route.spec.maxBackoff)
                        if let after = failure.retryAfter {
                            guard after <= route.spec.maxRetryAfter else { break }
                            wait = after
                        }
                        backoff *= 2
                        if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
                        continue
                    }
                }
                break
            }
        }
        metrics.latency(route: route.spec.name, since: started)
        let failure = last ?? Failure(status: 503, message: "route \(route.spec.name) has no target", retryAfter: nil, kind: .unavailable)
        throw Self.clientError(failure, attempts: attempts)
    }

    /// `x-loom-policy`: what the route's policies decided, when they decided something.
    static func policyHeader(_ decisions: [PolicyDecision]) -> (String, String)? {
        decisions.isEmpty ? nil : ("x-loom-policy", decisions.map(\.summary).joined(separator: "; "))
    }

    /// The target picked by weight, then the fallbacks in order (each once).
    static func candidates(_ route: LiveRoute) -> [RouteSpec.Target] {
        var picked = route.spec.targets.first { $0.weight > 0 } ?? route.spec.targets[0]
        if route.spec.targets.count > 1, route.totalWeight > 0 {
            var r = Int.random(in: 0..<route.totalWeight)
            for t in route.spec.targets {
                if r < t.weight {
                    picked = t
                    break
                }
                r -= t.weight
            }
        }
        var out = [picked]
        for f in route.spec.fallbacks where !out.contains(f) { out.append(f) }
        return out
    }

    static func cacheKey(route: LiveRoute, body: [String: JSONValue]) -> String {
        var b = body
        b["stream"] = nil
        b["stream_options"] = nil
        var bytes = Array((route.workspace + "\u{1F}" + route.spec.name + "\u{1F}").utf8)
        JSONValue.object(b).write(into: &bytes)
        return Identifiers.hex(bytes: SHA256.hash(data: bytes))
    }

    struct Failure: Sendable {
        enum Kind: Sendable {
            /// Worth another attempt at the same target (429, 5xx, timeouts, refused connections).
            case retryable
            /// This target cannot answer (its key, its model): try the next.
            case unavailable
            /// The request is wrong: answered to the client as it is.
            case request
        }

        var status: Int
        var message: String
        var retryAfter: Double?
        var kind: Kind
        var timedOut = false
    }

    enum Outcome: Sendable {
        /// A 2xx answer still to be read (a stream, or AsyncHTTPClient's).
        case answered(HTTPClientResponse)
        /// A whole 2xx answer (over a pooled plain-HTTP connection).
        case body([UInt8])
        case failed(Failure)
    }

    /// One attempt: the provider's answer when its status is 2xx, else why not. Whole answers
    /// from plain-HTTP providers (local model servers, the test double) go over the pooled raw
    /// connections of `ForwardingClient`; streams and HTTPS through AsyncHTTPClient.
    func send(_ upstream: UpstreamCall, provider: ResolvedProvider, target: RouteSpec.Target, route: LiveRoute, stream: Bool) async -> Outcome {
        if !stream, let plain = forwarding.target(url: upstream.url) {
            return await forward(upstream, plain, target: target, timeout: route.spec.timeout)
        }
        var request = HTTPClientRequest(url: upstream.url)
        request.method = .POST
        for (name, value) in upstream.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: upstream.body))
        let what = "provider \(target.provider) (model \(target.model))"
        let timeout = route.spec.timeout
        do {
            let response: HTTPClientResponse
            if stream {
                // The timeout bounds the wait for the answer's head; the stream itself may run long.
                let client = self.client
                let prepared = request
                response = try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
                    group.addTask { try await client.execute(prepared, timeout: .hours(1)) }
                    group.addTask {
                        try await Task.sleep(for: .seconds(timeout))
                        return nil
                    }
                    let first = try await group.next()!
                    group.cancelAll()
                    guard let first else { throw HTTPClientError.deadlineExceeded }
                    return first
                }
            } else {
                response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            }
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .answered(response) }
            let body = (try? await response.body.collect(upTo: 64 << 10)).map { Array($0.readableBytesView) } ?? []
            let message = "\(what) answered \(status): \(ProviderAdapter.errorMessage(body))"
            return .failed(Self.failure(status: status, message: message, retryAfter: Self.retryAfter(response.headers)))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failed(Failure(status: 504, message: "\(what) did not answer within \(RateLimiter.seconds(timeout))", retryAfter: nil, kind: .retryable, timedOut: true))
        } catch {
            return .failed(Failure(status: 502, message: "\(what) could not be reached: \(error)", retryAfter: nil, kind: .retryable))
        }
    }

    func forward(_ upstream: UpstreamCall, _ plain: ForwardingClient.Target, target: RouteSpec.Target, timeout: Double) async -> Outcome {
        let what = "provider \(target.provider) (model \(target.model))"
        do {
            let answer = try await forwarding.post(
                to: plain, headers: upstream.headers, body: ByteBuffer(bytes: upstream.body), timeout: .milliseconds(Int64(timeout * 1000)))
            let body = Array(answer.body.readableBytesView)
            if (200..<300).contains(answer.status) { return .body(body) }
            var retryAfter: Double?
            if let raw = answer.retryAfter {
                retryAfter = raw.hasPrefix("ms:") ? Double(raw.dropFirst(3)).map { $0 / 1000 } : Self.retryAfterSeconds(raw)
            }
            return .failed(Self.failure(status: answer.status, message: "\(what) answered \(answer.status): \(ProviderAdapter.errorMessage(body))", retryAfter: retryAfter))
        } catch ForwardingError.timedOut {
            return .failed(Failure(status: 504, message: "\(what) did not answer within \(RateLimiter.seconds(timeout))", retryAfter: nil, kind: .retryable, timedOut: true))
        } catch ForwardingError.tooLarge {
            return .failed(Failure(status: 502, message: "\(what) answered with more than \(Self.answerLimit >> 20) MiB", retryAfter: nil, kind: .unavailable))
        } catch {
            return .failed(Failure(status: 502, message: "\(what) could not be reached: \(error)", retryAfter: nil, kind: .retryable))
        }
    }

    /// How a failed status is handled: retried, passed on as the request's fault, or the next target.
    static func failure(status: Int, message: String, retryAfter: Double?) -> Failure {
        switch status {
        case 408, 409, 425, 429, 500, 502, 503, 504, 529: Failure(status: status, message: message, retryAfter: retryAfter, kind: .retryable)
        case 400, 413, 422: Failure(status: status, message: message, retryAfter: nil, kind: .request)
        default: Failure(status: status, message: message, retryAfter: nil, kind: .unavailable)
        }
    }

    /// A provider's `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, in seconds.
    static func retryAfter(_ headers: HTTPHeaders) -> Double? {
        if let ms = headers.first(name: "retry-after-ms").flatMap(Double.init), ms >= 0 { return ms / 1000 }
        guard let value = headers.first(name: "retry-after") else { return nil }
        return retryAfterSeconds(value)
    }

    static func retryAfterSeconds(_ value: String) -> Double? {
        if let s = Double(value.trimmingCharacters(in: .whitespaces)), s >= 0 { return s }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    /// A whole answer, in OpenAI's shape, with its usage.
    func complete(_ response: HTTPClientResponse, provider: ResolvedProvider, target: RouteSpec.Target) async -> ([UInt8]?, TokenUsage?) {
        guard let buffer = try? await response.body.collect(upTo: Self.answerLimit) else { return (nil, nil) }
        return Self.translate(Array(buffer.readableBytesView), provider: provider, target: target)
    }

    /// A provider's whole answer in OpenAI's shape, with its usage (nil: not a JSON object). An
    /// OpenAI-shaped answer is checked whole but only its `usage` is parsed: what it says is
    /// read for the trace when the trace is written (`TraceBuilder.setOutput`).
    static func translate(_ bytes: [UInt8], provider: ResolvedProvider, target: RouteSpec.Target) -> ([UInt8]?, TokenUsage?) {
        if provider.spec.kind == .anthropic {
            guard let value = try? JSONValue.parse(bytes) else { return (nil, nil) }
            let (translated, usage) = AnthropicTranslation.response(value, model: target.model, created: Clock.nowMillis() / 1000)
            return (translated.jsonBytes, usage)
        }
        guard let found = try? JSONValue.members(bytes, usageMember) else { return (nil, nil) }
        return (bytes, TokenUsage(found["usage"]?.value))
    }

    /// What `translate` reads of an answer (made once: a literal is a new dictionary per call).
    static let usageMember: [String: JSONValue.MemberMode] = ["usage": .value]

    /// What the client is told when every attempt failed: the last provider's message, with a
    /// status that says whose fault it was (429 rate limited, 504 timed out, 503 unavailable,
    /// 502 a bad answer or an unreachable provider).
    static func clientError(_ f: Failure, attempts: Int) -> GatewayError {
        let message = f.message + (attempts > 1 ? " (after \(attempts) attempts)" : "")
        if f.timedOut { return GatewayError(status: 504, type: "api_error", code: "timeout", message: message) }
        switch f.status {
        case 429:
            return GatewayError(
                status: 429, type: "rate_limit_error", code: "rate_limit_exceeded", message: message,
                headers: f.retryAfter.map { [("retry-after", String(Int($0.rounded(.up))))] } ?? [])
        case 503, 529:
            return GatewayError(status: 503, type: "api_error", code: "provider_unavailable", message: message,
                headers: f.retryAfter.map { [("retry-after", String(Int($0.rounded(.up))))] } ?? [])
        case 504: return GatewayError(status: 504, type: "api_error", code: "timeout", message: message)
        default: return GatewayError(status: 502, type: "api_error", code: "provider_error", message: message)
        }
    }

    /// The header of a completion's cost at the catalog's prices (`x-loom-cost`).
    public static let costHeader = "x-loom-cost"

    /// A cost as `%.10g` writes it (10 significant digits, no trailing zeros), without
    /// Foundation's `String(format:)`, which cost 3 % of a gateway call's CPU.
    static func costText(_ value: Double) -> String {
        guard value.isFinite, value != 0 else { return value == 0 ? "0" : "\(value)" }
        let exponent = Int((log10(abs(value))).rounded(.down))
        let scale = pow(10, Double(9 - exponent))
        var rounded = (value * scale).rounded() / scale
        if !rounded.isFinite { rounded = value }
        if rounded == rounded.rounded(), abs(rounded) < 1e10 { return String(Int64(rounded)) }
        let text = "\(rounded)"
        // Swift writes 1e-05 as "1e-05" and 0.0001 as "0.0001", as `%g` does; above 1e10 it keeps
        // plain digits where `%g` would switch to an exponent (no cost is that large).
        return text
    }

    /// Counts a call (or attempt) in the usage and the metrics; its cost.
    @discardableResult
    func record(
        route: LiveRoute, caller: GatewayCaller, target: RouteSpec.Target, usage: TokenUsage?, failed: Bool, cached: Bool, day: String, scopes: [String]
    ) -> Double {
        let tokens = cached ? TokenUsage() : (usage ?? TokenUsage())
        let cost = Self.cost(usage, cached: cached, price: price(route: route, target: target))
        meter.record(GatewayUsage(
            workspace: route.workspace, day: day, key: caller.key?.id ?? "", route: route.spec.name, provider: target.provider, model: target.model,
            requests: 1, errors: failed ? 1 : 0, cached: cached ? 1 : 0, promptTokens: tokens.prompt, completionTokens: tokens.completion, cost: cost),
            scopes: scopes)
        metrics.count(route: route.spec.name, provider: target.provider, model: target.model, failed: failed, cached: cached, usage: tokens, cost: cost)
        return cost
    }

    /// The catalog's price of a route's target, if it has one.
    func price(route: LiveRoute, target: RouteSpec.Target) -> CatalogModel? {
        table.withLock { $0.catalog[route.workspace + "\u{1F}" + target.provider + "\u{1F}" + target.model] }
    }

    /// What `usage` costs at `price` (nothing for a cached answer).
    static func cost(_ usage: TokenUsage?, cached: Bool, price: CatalogModel?) -> Double {
        let tokens = cached ? TokenUsage() : (usage ?? TokenUsage())
        return price?.cost(promptTokens: tokens.prompt, completionTokens: tokens.completion) ?? 0
    }

    /// What a whole answer says: the first choice's text (or its tool calls), or what an
    /// embeddings answer holds.
    static func answerText(_ bytes: [UInt8]) -> String {
        // An embeddings answer's vectors are counted, not parsed.
        guard let found = try? JSONValue.members(bytes, ["choices": .value, "data": .count]) else { return "" }
        if let choices = found["choices"]?.value { return answerText(.object(["choices": choices])) }
        if case .number(let n, _)? = found["data"]?.value { return "\(Int(n)) embedding\(n == 1 ? "" : "s")" }
        return ""
    }

    static func answerText(_ value: JSONValue) -> String {
        if let message = value["choices"]?.arrayValue?.first?["message"] {
            if let text = message["content"]?.stringValue { return text }
            if let calls = message["tool_calls"] { return calls.jsonString }
        }
        if let data = value["data"]?.arrayValue { return "\(data.count) embedding\(data.count == 1 ? "" : "s")" }
        return ""
    }

    // MARK: Catalog

    /// A model in a provider's listing.
    public struct ListedModel: Sendable {
        public var id: String
        public var capabilities: [String]
        public var contextLength: Int64?
        public var description: String
    }

    /// A provider's model listing (`GET /models`; Anthropic's `/v1/models`).
    public func listModels(provider name: String, workspace: String) async throws -> [ListedModel] {
        guard let provider = table.withLock({ $0.providers[Self.id(workspace, name)] }) else {
            throw LoomError.notFound("No provider named \(name) in workspace \(workspace)")
        }
        if let problem = provider.keyProblem { throw LoomError.unavailable(problem) }
        guard let call = ProviderAdapter.models(provider) else { return [] }
        var request = HTTPClientRequest(url: call.url)
        for (n, v) in call.headers where n != "content-type" { request.headers.add(name: n, value: v) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
        } catch {
            throw LoomError(.badGateway, "provider \(name): its model listing could not be read: \(error)")
        }
        let body = Array((try? await response.body.collect(upTo: 16 << 20))?.readableBytesView ?? ByteBuffer().readableBytesView)
        guard response.status.code == 200 else {
            throw LoomError(.badGateway, "provider \(name) answered \(response.status.code) to its model listing: \(ProviderAdapter.errorMessage(body))")
        }
        guard let value = try? JSONValue.parse(body), let items = value["data"]?.arrayValue ?? value["models"]?.arrayValue else {
            throw LoomError(.badGateway, "provider \(name): its model listing is not a JSON list of models")
        }
        return items.compactMap { item -> ListedModel? in
            guard let id = item["id"]?.stringValue ?? item["name"]?.stringValue, !id.isEmpty else { return nil }
            let lower = id.lowercased()
            var capabilities: [String]
            if lower.contains("embed") {
                capabilities = ["embeddings"]
            } else if provider.spec.kind == .anthropic {
                capabilities = ["chat", "tools", "vision"]
            } else {
                capabilities = ["chat"]
            }
            if let listed = item["capabilities"]?.arrayValue?.compactMap(\.stringValue), !listed.isEmpty { capabilities = listed }
            let context = (item["context_length"] ?? item["max_model_len"] ?? item["context_window"])?.doubleValue.map { Int64($0) }
            let description = item["display_name"]?.stringValue ?? item["owned_by"].flatMap { $0.stringValue.map { "owned by \($0)" } } ?? ""
            return ListedModel(id: id, capabilities: capabilities, contextLength: context, description: description)
        }
    }

    // MARK: Usage

    /// Writes the usage summed and the traces finished since the last flush (put back if the
    /// write fails). With `settle`, first waits (up to `settleLimit`, 100 ms) for the bookkeeping of answers
    /// already written (`later`), so that a query that follows an answer finds its call; the
    /// periodic flush does not wait.
    public func flushUsage(settle: Bool = true) async {
        if settle {
            let deadline = ContinuousClock.now + settleLimit
            while leftForLater.load(ordering: .acquiring) > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .microseconds(200))
            }
        }
        let finished = traces.take()
        if !finished.isEmpty {
            do {
                try await store.addGatewayTraces(finished)
                await onTraces?(finished)
            } catch {
                traces.restore(finished)
                logger.warning("gateway: traces not written yet (\(error)); kept for the next flush")
            }
        }
        let rows = meter.takePending()
        guard !rows.isEmpty else { return }
        do {
            try await store.addGatewayUsage(rows)
        } catch {
            meter.restore(rows)
            logger.warning("gateway: usage not written yet (\(error)); kept for the next flush")
        }
    }

    public func usage(workspace: String, fromDay: String, toDay: String) async throws -> [GatewayUsage] {
        await flushUsage()
        return try await store.gatewayUsage(workspace: workspace, fromDay: fromDay, toDay: toDay)
    }

    /// Forgets every cached answer.
    public func clearCache() { caches.withLock { $0.removeAll() } }
}

/// Gateway keys: `lgk_` and 40 hex digits, stored as their SHA-256.
public enum GatewayKeys {
    public static let prefix = "lgk_"

    public static func newSecret() -> String { prefix + Identifiers.newHexID() + Identifiers.newHexID().prefix(8) }

    public static func hash(_ secret: String) -> String { Identifiers.hex(bytes: SHA256.hash(data: Array(secret.utf8))) }
}

/// Prometheus figures of the gateway, their counters made once per label set.
final class GatewayMetrics: Sendable {
    struct Counters {
        let requests: Counter
        let errors: Counter
        let cached: Counter
        let promptTokens: Counter
        let completionTokens: Counter
        let cost: FloatingPointCounter
    }

    let counters = Mutex<[String: Counters]>([:])
    let timers = Mutex<[String: Metrics.Timer]>([:])
    let refusals = Mutex<[String: Counter]>([:])
    let policyCounters = Mutex<[String: Counter]>([:])

    func count(route: String, provider: String, model: String, failed: Bool, cached: Bool, usage: TokenUsage, cost: Double) {
        let key = route + "\u{1F}" + provider + "\u{1F}" + model
        let c = counters.withLock { all in
            if let c = all[key] { return c }
            let d = [("route", route), ("provider", provider), ("model", model)]
            let c = Counters(
                requests: Counter(label: "loom_gateway_requests_total", dimensions: d),
                errors: Counter(label: "loom_gateway_errors_total", dimensions: d),
                cached: Counter(label: "loom_gateway_cache_hits_total", dimensions: d),
                promptTokens: Counter(label: "loom_gateway_tokens_total", dimensions: d + [("type", "prompt")]),
                completionTokens: Counter(label: "loom_gateway_tokens_total", dimensions: d + [("type", "completion")]),
                cost: FloatingPointCounter(label: "loom_gateway_cost_total", dimensions: d))
            all[key] = c
            return c
        }
        c.requests.increment()
        if failed { c.errors.increment() }
        if cached { c.cached.increment() }
        if usage.prompt > 0 { c.promptTokens.increment(by: usage.prompt) }
        if usage.completion > 0 { c.completionTokens.increment(by: usage.completion) }
        if cost > 0 { c.cost.increment(by: cost) }
    }

    func refused(route: String) {
        let c = refusals.withLock { all in
            if let c = all[route] { return c }
            let c = Counter(label: "loom_gateway_rate_limited_total", dimensions: [("route", route)])
            all[route] = c
            return c
        }
        c.increment()
    }

    func latency(route: String, since start: ContinuousClock.Instant) {
        let t = timers.withLock { all in
            if let t = all[route] { return t }
            let t = Metrics.Timer(label: "loom_gateway_request_duration_seconds", dimensions: [("route", route)])
            all[route] = t
            return t
        }
        let d = ContinuousClock.now - start
        t.recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
