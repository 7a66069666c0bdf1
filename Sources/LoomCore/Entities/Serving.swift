/// An online endpoint: a stable URL (`/endpoints/NAME/invocations`) in front of one or more
/// deployments, with the traffic policy that splits requests among them (docs/deployment.md).
public struct Endpoint: Sendable, Codable, Hashable {
    public enum AuthMode: String, Sendable, Codable, Hashable, CaseIterable {
        /// The server's own auth (tokens, passwords); open when the server runs without auth.
        case workspace
        /// A key of the endpoint's own, as `Authorization: Bearer KEY`.
        case key
    }

    public var workspace: String
    public var name: String
    public var description: String
    public var auth: AuthMode
    /// SHA-256 (hex) of the endpoint's key when `auth` is `key`.
    public var keyHash: String?
    /// Live weights by deployment: integers that sum to 100, or to 0 (disabled).
    public var traffic: [String: Int]
    /// At most one deployment, with the percentage of live requests it gets a copy of (≤ 50).
    public var mirror: [String: Int]
    /// A request header whose value pins a caller to one deployment (sticky routing); nil: none.
    public var stickyHeader: String?
    /// The share of requests (0…1) whose request and response are collected.
    public var samplingRate: Double
    /// Requests in flight at once before more are shed with 429; nil: no limit.
    public var concurrencyLimit: Int?
    /// How long a request may take before it is answered with 504.
    public var timeoutMillis: Int
    /// The largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// Bumped by every change to the endpoint or its deployments: replicas reload on a change,
    /// and a change made from a stale view is refused.
    public var generation: Int64
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis

    public static let defaultTimeoutMillis = 60_000
    public static let defaultMaxBodyBytes = 8 << 20

    public init(
        workspace: String = Workspace.defaultName, name: String, description: String = "", auth: AuthMode = .workspace, keyHash: String? = nil,
        traffic: [String: Int] = [:], mirror: [String: Int] = [:], stickyHeader: String? = nil, samplingRate: Double = 0,
        concurrencyLimit: Int? = nil, timeoutMillis: Int = Endpoint.defaultTimeoutMillis, maxBodyBytes: Int = Endpoint.defaultMaxBodyBytes,
        generation: Int64 = 1, createdBy: String, creationTime: Millis, lastUpdatedTime: Millis? = nil
    ) {
        self.workspace = workspace
        self.name = name
        self.description = description
        self.auth = auth
        self.keyHash = keyHash
        self.traffic = traffic
        self.mirror = mirror
        self.stickyHeader = stickyHeader
        self.samplingRate = samplingRate
        self.concurrencyLimit = concurrencyLimit
        self.timeoutMillis = timeoutMillis
        self.maxBodyBytes = maxBodyBytes
        self.generation = generation
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
    }
}

/// One deployment of an endpoint: a model version served by a runtime.
public struct Deployment: Sendable, Codable, Hashable {
    public enum Runtime: String, Sendable, Codable, Hashable, CaseIterable {
        /// Loom's own model formats, served in the server's process.
        case native
        /// A command Loom starts (with `$PORT`), health-checks and restarts.
        case process
        /// An HTTP URL Loom routes to but does not run.
        case external
    }

    /// How a process or external deployment is reached and run.
    public struct Settings: Sendable, Codable, Hashable {
        /// process: the shell command (`$PORT` is each replica's port).
        public var command: String?
        /// process: how many copies run.
        public var replicas: Int?
        /// process: the folder the command runs in.
        public var directory: String?
        /// process: extra environment.
        public var environment: [String: String]?
        /// external: where requests go (POSTed as they came).
        public var url: String?
        /// process, external: the path to POST requests to (default `/invocations`).
        public var invocationPath: String?
        /// process: the path answering 200 once a replica is ready (default `/ping`).
        public var healthPath: String?
        /// process: how long a replica may take to become ready.
        public var startupSeconds: Double?

        public init(
            command: String? = nil, replicas: Int? = nil, directory: String? = nil, environment: [String: String]? = nil, url: String? = nil,
            invocationPath: String? = nil, healthPath: String? = nil, startupSeconds: Double? = nil
        ) {
            self.command = command
            self.replicas = replicas
            self.directory = directory
            self.environment = environment
            self.url = url
            self.invocationPath = invocationPath
            self.healthPath = healthPath
            self.startupSeconds = startupSeconds
        }
    }

    public var workspace: String
    public var endpoint: String
    public var name: String
    /// The model as asked for: `models:/NAME/VERSION` or `models:/NAME@ALIAS`; empty for an
    /// external deployment that names none.
    public var model: String
    /// The registered version it resolved to when deployed (`NAME/VERSION`).
    public var modelVersion: String?
    public var runtime: Runtime
    public var settings: Settings
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis

    public init(
        workspace: String = Workspace.defaultName, endpoint: String, name: String, model: String, modelVersion: String? = nil,
        runtime: Runtime, settings: Settings = .init(), createdBy: String, creationTime: Millis, lastUpdatedTime: Millis? = nil
    ) {
        self.workspace = workspace
        self.endpoint = endpoint
        self.name = name
        self.model = model
        self.modelVersion = modelVersion
        self.runtime = runtime
        self.settings = settings
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
    }
}
