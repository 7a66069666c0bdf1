/// A gateway resource (docs/gateway.md): a provider (`kind: provider`) or a route
/// (`kind: route`) applied to a workspace from YAML. The text is kept as applied;
/// `LoomGenAI.GatewaySpec` reads it.
public struct GatewayResource: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable, CaseIterable {
        case provider
        case route
        /// A content-safety policy routes attach.
        case policy

        /// The API's collection name: `providers`, `routes`, `policies`.
        public var plural: String { self == .policy ? "policies" : rawValue + "s" }
    }

    public var workspace: String
    public var kind: Kind
    public var name: String
    public var specText: String
    /// Bumped each time a changed spec is applied.
    public var version: Int64
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis

    public init(
        workspace: String = Workspace.defaultName, kind: Kind, name: String, specText: String, version: Int64 = 1, createdBy: String,
        creationTime: Millis, lastUpdatedTime: Millis? = nil
    ) {
        self.workspace = workspace
        self.kind = kind
        self.name = name
        self.specText = specText
        self.version = version
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
    }
}

/// A provider model in the workspace's catalog: what it can do, what it costs, whether it is
/// still offered. Synced from the provider's model listing or edited by hand.
public struct CatalogModel: Sendable, Codable, Hashable {
    public var workspace: String
    /// The provider resource's name.
    public var provider: String
    /// The provider's model id.
    public var model: String
    /// `chat`, `embeddings`, `tools`, `vision`, ...
    public var capabilities: [String]
    public var contextLength: Int64?
    /// Prices in the workspace's currency per million prompt (input) and completion (output) tokens.
    public var inputPrice: Double?
    public var outputPrice: Double?
    public var license: String?
    /// `available`, `preview`, `deprecated` or `retired`.
    public var status: String
    /// When the provider retires it (an ISO date), when announced.
    public var deprecationDate: String?
    public var description: String
    /// `sync` (from the provider's listing) or `manual`.
    public var source: String
    public var lastUpdatedTime: Millis

    public static let statuses = ["available", "preview", "deprecated", "retired"]

    public var isDeprecated: Bool { status == "deprecated" || status == "retired" || deprecationDate != nil }

    public init(
        workspace: String = Workspace.defaultName, provider: String, model: String, capabilities: [String] = [], contextLength: Int64? = nil,
        inputPrice: Double? = nil, outputPrice: Double? = nil, license: String? = nil, status: String = "available", deprecationDate: String? = nil,
        description: String = "", source: String = "manual", lastUpdatedTime: Millis
    ) {
        self.workspace = workspace
        self.provider = provider
        self.model = model
        self.capabilities = capabilities
        self.contextLength = contextLength
        self.inputPrice = inputPrice
        self.outputPrice = outputPrice
        self.license = license
        self.status = status
        self.deprecationDate = deprecationDate
        self.description = description
        self.source = source
        self.lastUpdatedTime = lastUpdatedTime
    }

    /// The cost of a call with these token counts (nil: the catalog has no price).
    public func cost(promptTokens: Int64, completionTokens: Int64) -> Double? {
        guard inputPrice != nil || outputPrice != nil else { return nil }
        return (Double(promptTokens) * (inputPrice ?? 0) + Double(completionTokens) * (outputPrice ?? 0)) / 1_000_000
    }
}

/// A gateway key: a bearer secret for `/v1/...`, scoped to a workspace and some of its routes,
/// with its own limits. Only a hash of the secret is stored.
public struct GatewayKey: Sendable, Codable, Hashable {
    public var id: String
    public var workspace: String
    public var name: String
    /// The secret's first characters, to recognise it in lists.
    public var prefix: String
    /// SHA-256 (hex) of the secret.
    public var keyHash: String
    /// The routes it may call (empty: every route of the workspace).
    public var routes: [String]
    public var requestsPerMinute: Int64?
    public var tokensPerMinute: Int64?
    public var spendPerDay: Double?
    public var createdBy: String
    public var creationTime: Millis
    public var revokedTime: Millis?

    public init(
        id: String, workspace: String = Workspace.defaultName, name: String, prefix: String, keyHash: String, routes: [String] = [],
        requestsPerMinute: Int64? = nil, tokensPerMinute: Int64? = nil, spendPerDay: Double? = nil, createdBy: String, creationTime: Millis,
        revokedTime: Millis? = nil
    ) {
        self.id = id
        self.workspace = workspace
        self.name = name
        self.prefix = prefix
        self.keyHash = keyHash
        self.routes = routes
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.spendPerDay = spendPerDay
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.revokedTime = revokedTime
    }

    public func allows(route: String) -> Bool { routes.isEmpty || routes.contains(route) }
}

/// Gateway usage summed per workspace, UTC day, key, route and provider model.
public struct GatewayUsage: Sendable, Codable, Hashable {
    public var workspace: String
    /// `YYYY-MM-DD` (UTC).
    public var day: String
    /// The gateway key's id; empty for calls without a key (a server without auth).
    public var key: String
    public var route: String
    public var provider: String
    public var model: String
    public var requests: Int64
    public var errors: Int64
    /// Requests answered from the route's cache (no provider call, no cost).
    public var cached: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var cost: Double

    public init(
        workspace: String = Workspace.defaultName, day: String, key: String = "", route: String, provider: String, model: String, requests: Int64 = 0,
        errors: Int64 = 0, cached: Int64 = 0, promptTokens: Int64 = 0, completionTokens: Int64 = 0, cost: Double = 0
    ) {
        self.workspace = workspace
        self.day = day
        self.key = key
        self.route = route
        self.provider = provider
        self.model = model
        self.requests = requests
        self.errors = errors
        self.cached = cached
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cost = cost
    }

    /// The row's identity: what sums of it are keyed by.
    public var identity: String { [workspace, day, key, route, provider, model].joined(separator: "\u{1F}") }

    public mutating func add(_ other: GatewayUsage) {
        requests += other.requests
        errors += other.errors
        cached += other.cached
        promptTokens += other.promptTokens
        completionTokens += other.completionTokens
        cost += other.cost
    }
}

/// One gateway call, as a trace (docs/gateway.md, "Traces"): who called which route, which
/// provider answered, tokens, cost, latency, what went in and came out (after the policies),
/// and its spans (policies, prompt, limits, cache, each provider attempt).
public struct GatewayTrace: Sendable, Codable, Hashable {
    /// 32 hex digits (a W3C trace id: the caller's `traceparent` when it sent one).
    public var id: String
    public var workspace: String
    public var route: String
    /// The gateway key's id; empty without one.
    public var key: String
    /// `chat` or `embeddings`.
    public var task: String
    /// Who answered (nil: no provider did).
    public var provider: String?
    public var model: String?
    /// The HTTP status the client got.
    public var status: Int
    public var stream: Bool
    public var startTime: Millis
    public var durationMicros: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var cost: Double
    /// The messages (or embeddings input) as sent to the provider, JSON, cut at 16 KiB.
    public var input: String
    /// The answer's text as the client got it, cut at 16 KiB.
    public var output: String
    public var error: String?
    /// `[{name, start_us, duration_us, attributes}]`, offsets from `startTime`.
    public var spansJSON: String

    public init(
        id: String, workspace: String = Workspace.defaultName, route: String, key: String = "", task: String = "chat", provider: String? = nil,
        model: String? = nil, status: Int, stream: Bool = false, startTime: Millis, durationMicros: Int64, promptTokens: Int64 = 0,
        completionTokens: Int64 = 0, cost: Double = 0, input: String = "", output: String = "", error: String? = nil, spansJSON: String = "[]"
    ) {
        self.id = id
        self.workspace = workspace
        self.route = route
        self.key = key
        self.task = task
        self.provider = provider
        self.model = model
        self.status = status
        self.stream = stream
        self.startTime = startTime
        self.durationMicros = durationMicros
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cost = cost
        self.input = input
        self.output = output
        self.error = error
        self.spansJSON = spansJSON
    }
}
