import AsyncHTTPClient
import Crypto
import Foundation
import LoomCore
import LoomForwarding
import LoomModels
import LoomStore
import Logging
import NIOCore
import Synchronization

/// Where deployments get their models: the registry (LoomTracking implements it).
public protocol ModelSource: Sendable {
    /// The registered version a `models:/NAME/VERSION` or `models:/NAME@ALIAS` reference names now.
    func registeredVersion(_ reference: String, workspace: String) async throws -> (name: String, version: String)
    /// The Loom model file of a registered version (`invalidParameter` when it holds another format).
    func nativeModel(name: String, version: String, workspace: String) async throws -> LoomModel
    /// The latest value of `metric` in the run that made a registered version (`NAME/VERSION`);
    /// nil when it has none.
    func runMetric(modelVersion: String, metric: String, workspace: String) async throws -> Double?
    /// The first `limit` rows of a registered dataset (`NAME` or `NAME@VERSION`) as JSON values by
    /// column, without `target`, and the target's values as text (nil when not asked).
    func validationRows(dataset: String, target: String?, limit: Int, workspace: String) async throws -> (
        columns: [String], rows: [[JSONValue]], truth: [String]?
    )
}

/// Online endpoints: their records, their deployments' runtimes, and the table the request path
/// reads (docs/deployment.md). Every replica of the server keeps its table in step with the
/// store through `refresh`.
public final class ServingService: Sendable {
    public let store: any MetadataStore
    public let models: any ModelSource
    public let router = EndpointRouter()
    public let forwarder: HTTPForwarder
    let logger: Logger
    let flows = Mutex<(any FlowInvoker)?>(nil)

    /// What runs `flow` deployments (the server's flow runner); without one they cannot deploy.
    public func use(flows invoker: any FlowInvoker) {
        flows.withLock { $0 = invoker }
    }

    public func flowInvoker() throws(LoomError) -> any FlowInvoker {
        guard let invoker = flows.withLock({ $0 }) else { throw .invalidState("flow deployments need a server that runs flows (the gateway's)") }
        return invoker
    }
    /// Where process runtimes write their replicas' output (`NAME/DEPLOYMENT/replica-N.log`).
    let logRoot: String?
    /// Serializes table rebuilds (refresh and changes made here).
    let rebuilding = AsyncLock()
    /// Where sampled requests and posted labels go (nil: nowhere).
    public let collector: RequestCollector?

    public init(
        store: any MetadataStore, models: any ModelSource, client: HTTPClient, collector: RequestCollector?, logRoot: String?, logger: Logger
    ) {
        self.store = store
        self.models = models
        self.forwarder = HTTPForwarder(client: client)
        self.collector = collector
        self.logRoot = logRoot
        self.logger = logger
    }

    // MARK: Endpoints

    public struct EndpointSettings: Sendable {
        public var description: String?
        public var auth: Endpoint.AuthMode?
        public var stickyHeader: String??
        public var samplingRate: Double?
        public var concurrencyLimit: Int??
        public var timeoutMillis: Int?
        public var maxBodyBytes: Int?

        public init(
            description: String? = nil, auth: Endpoint.AuthMode? = nil, stickyHeader: String?? = nil, samplingRate: Double? = nil,
            concurrencyLimit: Int?? = nil, timeoutMillis: Int? = nil, maxBodyBytes: Int? = nil
        ) {
            self.description = description
            self.auth = auth
            self.stickyHeader = stickyHeader
            self.samplingRate = samplingRate
            self.concurrencyLimit = concurrencyLimit
            self.timeoutMillis = timeoutMillis
            self.maxBodyBytes = maxBodyBytes
        }

        func apply(to e: inout Endpoint) throws(LoomError) {
            if let description { e.description = description }
            if let auth { e.auth = auth }
            if let stickyHeader {
                if let h = stickyHeader {
                    guard !h.isEmpty, h.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                        throw LoomError.invalidParameter("sticky_header must be a header name (letters, digits, - and _)")
                    }
                }
                e.stickyHeader = stickyHeader?.lowercased()
            }
            if let samplingRate {
                guard samplingRate.isFinite, (0...1).contains(samplingRate) else {
                    throw LoomError.invalidParameter("sampling_rate must be from 0 to 1, not \(samplingRate)")
                }
                e.samplingRate = samplingRate
            }
            if let concurrencyLimit {
                if let c = concurrencyLimit, c < 1 { throw LoomError.invalidParameter("concurrency_limit must be at least 1") }
                e.concurrencyLimit = concurrencyLimit
            }
            if let timeoutMillis {
                guard (1...3_600_000).contains(timeoutMillis) else { throw LoomError.invalidParameter("timeout_ms must be from 1 to 3600000") }
                e.timeoutMillis = timeoutMillis
            }
            if let maxBodyBytes {
                guard (1...(1 << 30)).contains(maxBodyBytes) else { throw LoomError.invalidParameter("max_body_bytes must be from 1 to 1073741824") }
                e.maxBodyBytes = maxBodyBytes
            }
        }
    }

    /// Creates an endpoint; with key auth, returns its key (shown once; only its hash is kept).
    public func createEndpoint(name: String, settings: EndpointSettings, workspace: String) async throws -> (Endpoint, key: String?) {
        try Self.checkName(name, what: "endpoint")
        var e = Endpoint(workspace: workspace, name: name, createdBy: AuditContext.current.actor, creationTime: Clock.nowMillis())
        try settings.apply(to: &e)
        var key: String?
        if e.auth == .key {
            let k = Self.newKey()
            e.keyHash = Self.hash(key: k)
            key = k
        }
        try await store.createEndpoint(e)
        try await reload(workspace: workspace, name: name)
        return (e, key)
    }

    public func endpoint(name: String, workspace: String) async throws -> Endpoint {
        guard let e = try await store.endpoint(name: name, workspace: workspace) else { throw LoomError.notFound("No endpoint named \(name)") }
        return e
    }

    /// Changes settings (not traffic); turning key auth on makes a new key, returned once.
    public func updateEndpoint(name: String, settings: EndpointSettings, regenerateKey: Bool, workspace: String) async throws -> (Endpoint, key: String?) {
        try await change(name: name, workspace: workspace) { e throws(LoomError) in
            let wasKey = e.auth == .key
            try settings.apply(to: &e)
            var key: String?
            if e.auth == .key, !wasKey || regenerateKey {
                let k = Self.newKey()
                e.keyHash = Self.hash(key: k)
                key = k
            } else if e.auth != .key {
                e.keyHash = nil
            }
            return key
        }
    }

    /// Sets the live traffic map and the mirror (nil: left as it is); checked whole, so that a
    /// refused change leaves the map as it was.
    public func setTraffic(name: String, traffic: [String: Int]?, mirror: [String: Int]?, workspace: String) async throws -> Endpoint {
        let deployments = Set(try await store.deployments(endpoint: name, workspace: workspace).map(\.name))
        return try await change(name: name, workspace: workspace) { e throws(LoomError) in
            let checked = try TrafficPolicy.check(traffic: traffic ?? e.traffic, mirror: mirror ?? e.mirror, deployments: deployments, endpoint: name)
            e.traffic = checked.traffic
            e.mirror = checked.mirror
            return nil
        }.0
    }

    /// Sets traffic as `setTraffic` does, for the rollout controller.
    public func applyTraffic(endpoint name: String, workspace: String, traffic: [String: Int]?, mirror: [String: Int]?) async throws {
        _ = try await setTraffic(name: name, traffic: traffic, mirror: mirror, workspace: workspace)
    }

    /// Applies `edit` to the stored endpoint and saves it, again from the new state when
    /// another change got in between.
    func change(
        name: String, workspace: String, _ edit: (inout Endpoint) throws(LoomError) -> String?
    ) async throws -> (Endpoint, key: String?) {
        for _ in 0..<5 {
            var e = try await endpoint(name: name, workspace: workspace)
            let key = try edit(&e)
            e.lastUpdatedTime = Clock.nowMillis()
            if let saved = try await store.updateEndpoint(e) {
                try await reload(workspace: workspace, name: name)
                return (saved, key)
            }
        }
        throw LoomError.invalidState("Endpoint \(name) kept changing; try again")
    }

    public func deleteEndpoint(name: String, workspace: String) async throws {
        guard try await store.deleteEndpoint(name: name, workspace: workspace) else { throw LoomError.notFound("No endpoint named \(name)") }
        try await reload(workspace: workspace, name: name)
    }

    // MARK: Deployments

    /// Adds a deployment (live weight 0 until traffic is assigned). The model reference is
    /// resolved to a registered version now; a native model is loaded to check it serves.
    public func deploy(
        endpoint: String, name: String, model: String, runtime: Deployment.Runtime, settings: Deployment.Settings, workspace: String
    ) async throws -> Deployment {
        try Self.checkName(name, what: "deployment")
        _ = try await self.endpoint(name: endpoint, workspace: workspace)
        let d = try await prepare(Deployment(
            workspace: workspace, endpoint: endpoint, name: name, model: model, runtime: runtime, settings: settings,
            createdBy: AuditContext.current.actor, creationTime: Clock.nowMillis()))
        try await store.createDeployment(d)
        try await recordLineage(d)
        try await reload(workspace: workspace, name: endpoint)
        return d
    }

    /// Points a deployment at another model or settings; its runtime is replaced.
    public func updateDeployment(
        endpoint: String, name: String, model: String?, settings: Deployment.Settings?, workspace: String
    ) async throws -> Deployment {
        guard var d = try await store.deployments(endpoint: endpoint, workspace: workspace).first(where: { $0.name == name }) else {
            throw LoomError.notFound("Endpoint \(endpoint) has no deployment named \(name)")
        }
        if let model { d.model = model }
        if let settings { d.settings = settings }
        d.lastUpdatedTime = Clock.nowMillis()
        d = try await prepare(d)
        try await store.updateDeployment(d)
        try await recordLineage(d)
        try await reload(workspace: workspace, name: endpoint)
        return d
    }

    public func deleteDeployment(endpoint: String, name: String, workspace: String) async throws {
        try await store.deleteDeployment(endpoint: endpoint, name: name, workspace: workspace)
        try await reload(workspace: workspace, name: endpoint)
    }

    /// Checks a deployment's settings for its runtime and resolves its model.
    func prepare(_ given: Deployment) async throws -> Deployment {
        var d = given
        switch d.runtime {
        case .native:
            guard !d.model.isEmpty else { throw LoomError.invalidParameter("A native deployment needs a model (models:/NAME/VERSION or models:/NAME@ALIAS)") }
        case .process:
            guard let command = d.settings.command, !command.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw LoomError.invalidParameter("A process deployment needs a command (it gets its port as $PORT)")
            }
            if let r = d.settings.replicas, !(1...64).contains(r) { throw LoomError.invalidParameter("replicas must be from 1 to 64") }
            if let s = d.settings.startupSeconds, !(s > 0 && s <= 3600) { throw LoomError.invalidParameter("startup_seconds must be from 0 to 3600") }
            for path in [d.settings.healthPath, d.settings.invocationPath].compactMap({ $0 }) where !path.hasPrefix("/") {
                throw LoomError.invalidParameter("health_path and invocation_path must start with /")
            }
        case .external:
            guard let url = d.settings.url, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw LoomError.invalidParameter("An external deployment needs a url (http:// or https://)")
            }
        case .flow:
            guard let flow = d.settings.flow, !flow.isEmpty else { throw LoomError.invalidParameter("A flow deployment needs a flow (a stored flow's NAME or NAME@VERSION)") }
            d.settings.flow = try await flowInvoker().pin(flow: flow, workspace: d.workspace)
        }
        if d.model.isEmpty {
            d.modelVersion = nil
        } else {
            let (modelName, version) = try await models.registeredVersion(d.model, workspace: d.workspace)
            d.modelVersion = "\(modelName)/\(version)"
            if d.runtime == .native { _ = NativeRuntime(model: try await models.nativeModel(name: modelName, version: version, workspace: d.workspace)) }
        }
        return d
    }

    /// deployment ← model version, so that lineage reaches from an endpoint back to its data.
    func recordLineage(_ d: Deployment) async throws {
        guard let version = d.modelVersion, let slash = version.lastIndex(of: "/") else { return }
        let node = LineageNodes.model(String(version[..<slash]), String(version[version.index(after: slash)...]))
        try await store.addLineageEdges([LineageEdge(
            workspace: d.workspace, source: node, target: LineageNodes.deployment(d.endpoint, d.name), relation: "deployed",
            creationTime: Clock.nowMillis())])
    }

    // MARK: Labels

    /// A ground-truth label for a scored request, found by its correlation id.
    public struct Label: Sendable {
        public var correlationID: String
        public var label: JSONValue
        /// When the truth was known (default: now).
        public var time: Millis?

        public init(correlationID: String, label: JSONValue, time: Millis? = nil) {
            self.correlationID = correlationID
            self.label = label
            self.time = time
        }
    }

    public static let maxLabelsPerCall = 10_000

    /// Writes labels next to the endpoint's collected requests (one file per call, under the
    /// hour it was posted); returns the file's path. Written before it returns.
    public func postLabels(endpoint name: String, labels: [Label], workspace: String) async throws -> String {
        _ = try await endpoint(name: name, workspace: workspace)
        guard let collector else { throw LoomError.unavailable("This server collects no requests") }
        guard !labels.isEmpty else { throw LoomError.invalidParameter("labels is empty") }
        guard labels.count <= Self.maxLabelsPerCall else {
            throw LoomError.invalidParameter("At most \(Self.maxLabelsPerCall) labels per call; got \(labels.count)")
        }
        for (i, l) in labels.enumerated() where !Self.isCorrelationID(l.correlationID) {
            throw LoomError.invalidParameter("labels[\(i)].correlation_id must be 1 to 128 letters, digits, -, _, . or :")
        }
        let now = Clock.nowMillis()
        let actor = AuditContext.current.actor
        var out = ByteBuffer()
        for l in labels {
            let time = l.time ?? now
            let label = String(decoding: try JSONEncoder().encode(l.label), as: UTF8.self)
            out.writeString("{\"correlation_id\":\(JSONValue.quoted(l.correlationID)),\"label\":\(label),\"time\":\"\(RequestCollector.iso(time))\",\"time_ms\":\(time),\"posted_by\":\(JSONValue.quoted(actor))}\n")
        }
        let path = "\(RequestCollector.folder(workspace: workspace, endpoint: name, time: now, labels: true))/\(collector.replica)-\(now)-\(Identifiers.newHexID().prefix(8)).jsonl"
        try await collector.sink.store(path, out)
        return path
    }

    /// Letters, digits, `-`, `_`, `.`, `:`; 1 to 128.
    public static func isCorrelationID(_ s: String) -> Bool {
        (1...128).contains(s.utf8.count)
            && s.utf8.allSatisfy { c in (c >= 0x30 && c <= 0x3A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E }
    }

    // MARK: The live table

    /// Rebuilds what changed since the last look (every replica calls it on a timer; changes
    /// made through this service apply at once).
    public func refresh() async {
        let stored: [Endpoint]
        do {
            stored = try await store.endpoints(workspace: nil)
        } catch {
            logger.warning("could not read the endpoints", metadata: ["error": "\(error)"])
            return
        }
        let known = Set(stored.map { EndpointRouter.Key(workspace: $0.workspace, name: $0.name) })
        var changed = stored.filter { router.endpoint(workspace: $0.workspace, name: $0.name)?.endpoint.generation != $0.generation }
            .map { ($0.workspace, $0.name) }
        changed += router.all.filter { !known.contains(EndpointRouter.Key(workspace: $0.endpoint.workspace, name: $0.endpoint.name)) }
            .map { ($0.endpoint.workspace, $0.endpoint.name) }
        // One endpoint that cannot be rebuilt does not hold the others back.
        for (workspace, name) in changed {
            do {
                try await reload(workspace: workspace, name: name)
            } catch {
                logger.warning("could not rebuild an endpoint", metadata: ["endpoint": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// Rebuilds one endpoint from the store: unchanged deployments keep their runtimes; new
    /// ones start; removed or replaced ones drain and stop.
    func reload(workspace: String, name: String) async throws {
        let retired: [LiveDeployment] = try await rebuilding.withLock {
            let current = router.endpoint(workspace: workspace, name: name)
            guard let e = try await store.endpoint(name: name, workspace: workspace) else {
                return router.remove(workspace: workspace, name: name).map { Array($0.deployments.values) } ?? []
            }
            if let current, current.endpoint.generation == e.generation { return [] }
            var live: [String: LiveDeployment] = [:]
            var retired: [LiveDeployment] = []
            let deployments = try await store.deployments(endpoint: name, workspace: workspace)
            for d in deployments {
                if let old = current?.deployments[d.name], old.deployment == d {
                    live[d.name] = old
                    continue
                }
                if let old = current?.deployments[d.name] { retired.append(old) }
                do {
                    live[d.name] = LiveDeployment(d, runtime: try await runtime(for: d))
                } catch {
                    logger.error("a deployment could not start", metadata: ["endpoint": "\(name)", "deployment": "\(d.name)", "error": "\(error)"])
                    live[d.name] = LiveDeployment(d, runtime: FailedRuntime(deployment: d.name, reason: "\(error)"))
                }
            }
            for (n, old) in current?.deployments ?? [:] where live[n] == nil { retired.append(old) }
            _ = router.replace(LiveEndpoint(e, deployments: live, collector: collector, logger: logger))
            return retired
        }
        // Outside the lock: draining may take a while.
        await stop(retired)
    }

    func stop(_ retired: [LiveDeployment]) async {
        for d in retired { await d.runtime.shutdown() }
    }

    func runtime(for d: Deployment) async throws -> any DeploymentRuntime {
        switch d.runtime {
        case .native:
            guard let version = d.modelVersion, let slash = version.lastIndex(of: "/") else {
                throw LoomError.invalidState("deployment \(d.name) has no resolved model version")
            }
            let model = try await models.nativeModel(name: String(version[..<slash]), version: String(version[version.index(after: slash)...]), workspace: d.workspace)
            return NativeRuntime(model: model)
        case .external:
            return ExternalRuntime(url: d.settings.url ?? "", deployment: d.name, forwarder: forwarder)
        case .flow:
            return FlowRuntime(invoker: try flowInvoker(), flow: d.settings.flow ?? "", workspace: d.workspace)
        case .process:
            let s = d.settings
            let runtime = ProcessRuntime(
                deployment: d.name,
                options: .init(
                    command: s.command ?? "", replicas: s.replicas ?? 1, directory: s.directory, environment: s.environment ?? [:],
                    healthPath: s.healthPath ?? "/ping", invocationPath: s.invocationPath ?? "/invocations", startupSeconds: s.startupSeconds ?? 120,
                    logDirectory: logRoot.map { "\($0)/\(d.workspace)/\(d.endpoint)/\(d.name)" }),
                forwarder: forwarder, logger: logger)
            runtime.start()
            return runtime
        }
    }

    /// Stops every runtime (the server stops) and closes idle upstream connections.
    public func shutdown() async {
        for live in router.all {
            _ = router.remove(workspace: live.endpoint.workspace, name: live.endpoint.name)
            await stop(Array(live.deployments.values))
        }
        forwarder.forwarding.shutdown()
    }

    /// Names appear in URLs: 1 to 63 letters, digits, `-` and `_`, starting with a letter or digit.
    static func checkName(_ name: String, what: String) throws(LoomError) {
        let ok = (1...63).contains(name.utf8.count) && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
        } && name.first != "-" && name.first != "_"
        guard ok else {
            throw LoomError.invalidParameter("A \(what) name is 1 to 63 letters, digits, - and _, starting with a letter or digit; not '\(name)'")
        }
    }

    // MARK: Keys

    /// Endpoint keys start with it (server tokens start with `loom_`).
    public static let keyPrefix = "loomep_"

    static func newKey() -> String {
        keyPrefix + Identifiers.hex(bytes: (0..<24).map { _ in UInt8.random(in: 0...255) })
    }

    public static func hash(key: String) -> String { Identifiers.hex(bytes: SHA256.hash(data: Data(key.utf8))) }

    /// Whether `given` is the endpoint's key (compared by hash, in constant time).
    public static func matches(key given: String, endpoint: Endpoint) -> Bool {
        guard let stored = endpoint.keyHash else { return false }
        let a = Array(hash(key: given).utf8)
        let b = Array(stored.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// A deployment whose runtime could not be built (its model is gone, say): it answers 503
/// with the reason, and the endpoint's other deployments go on serving.
struct FailedRuntime: DeploymentRuntime {
    let deployment: String
    let reason: String
    var isReady: Bool { false }
    func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        throw LoomError.unavailable("Deployment \(deployment) is not running: \(reason)")
    }
}

/// A mutual-exclusion lock for async code (one holder at a time, others wait in turn).
final class AsyncLock: Sendable {
    let state = Mutex<(held: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { s -> Bool in
                if !s.held {
                    s.held = true
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if resume { c.resume() }
        }
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
