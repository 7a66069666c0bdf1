/// One version of a named pipeline: its spec as written, identified by the digest of the text
/// (saving an unchanged spec again yields the same version).
public struct PipelineVersion: Sendable, Codable, Hashable {
    public var workspace: String
    public var name: String
    public var version: Int64
    /// `sha256:<hex>` of `spec`.
    public var digest: String
    /// The YAML as written.
    public var spec: String
    public var createdBy: String
    public var creationTime: Millis

    public init(workspace: String = Workspace.defaultName, name: String, version: Int64 = 0, digest: String, spec: String, createdBy: String, creationTime: Millis) {
        self.workspace = workspace
        self.name = name
        self.version = version
        self.digest = digest
        self.spec = spec
        self.createdBy = createdBy
        self.creationTime = creationTime
    }
}

/// One run of a pipeline version.
public struct PipelineRun: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable, CaseIterable {
        case queued, running, succeeded, failed, cancelled

        public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    public var id: String
    public var workspace: String
    public var pipeline: String
    public var pipelineVersion: Int64
    /// JSON object: the run's parameters, resolved.
    public var parameters: String
    /// JSON object: how it was asked to run (``PipelineRunOptions``).
    public var options: String
    public var state: State
    /// What started it: `manual`, `schedule`, `dataset`, `webhook`, `alert`.
    public var trigger: String
    /// The tracking run the step runs nest under.
    public var trackingRunID: String?
    /// Why it failed or was cancelled.
    public var message: String?
    public var createdBy: String
    public var startTime: Millis
    public var endTime: Millis?

    public init(
        id: String, workspace: String = Workspace.defaultName, pipeline: String, pipelineVersion: Int64, parameters: String,
        options: String = "{}", state: State = .queued, trigger: String = "manual", trackingRunID: String? = nil, message: String? = nil,
        createdBy: String, startTime: Millis, endTime: Millis? = nil
    ) {
        self.id = id
        self.workspace = workspace
        self.pipeline = pipeline
        self.pipelineVersion = pipelineVersion
        self.parameters = parameters
        self.options = options
        self.state = state
        self.trigger = trigger
        self.trackingRunID = trackingRunID
        self.message = message
        self.createdBy = createdBy
        self.startTime = startTime
        self.endTime = endTime
    }
}

/// One step of a pipeline run: its state, attempts, lease and outputs.
public struct StepRun: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable, CaseIterable {
        /// Waiting for its dependencies.
        case pending
        /// Waiting for a worker to lease it (`invocation` says what to run; `leaseExpiry`, when
        /// set, is the time before which it is not leased: a retry's delay).
        case ready
        /// Leased by a runner (`leaseOwner` until `leaseExpiry`).
        case running
        case succeeded
        /// Its outputs were reused from an earlier step run with the same cache key.
        case cached
        case failed
        /// Not run: a dependency failed, a gate stopped it, or the run was cancelled.
        case skipped
        case cancelled

        public var isFinished: Bool { self != .pending && self != .ready && self != .running }
    }

    public var pipelineRunID: String
    public var step: String
    public var state: State
    /// Attempts started (a retry or a re-lease after a lost runner adds one).
    public var attempts: Int
    public var cacheKey: String?
    /// JSON object: output name to what it is (a dataset `name@version`, a model URI, an
    /// artifact path, a value).
    public var outputs: String?
    public var trackingRunID: String?
    public var leaseOwner: String?
    public var leaseExpiry: Millis?
    public var message: String?
    public var startTime: Millis?
    public var endTime: Millis?
    /// JSON: what a worker runs (for steps run by workers).
    public var invocation: String?

    public init(
        pipelineRunID: String, step: String, state: State = .pending, attempts: Int = 0, cacheKey: String? = nil, outputs: String? = nil,
        trackingRunID: String? = nil, leaseOwner: String? = nil, leaseExpiry: Millis? = nil, message: String? = nil,
        startTime: Millis? = nil, endTime: Millis? = nil, invocation: String? = nil
    ) {
        self.pipelineRunID = pipelineRunID
        self.step = step
        self.state = state
        self.attempts = attempts
        self.cacheKey = cacheKey
        self.outputs = outputs
        self.trackingRunID = trackingRunID
        self.leaseOwner = leaseOwner
        self.leaseExpiry = leaseExpiry
        self.message = message
        self.startTime = startTime
        self.endTime = endTime
        self.invocation = invocation
    }
}

/// How a pipeline run was asked to run; kept with the run so that a resumed run runs the same way.
public struct PipelineRunOptions: Sendable, Codable, Hashable {
    /// Run every step, reusing no earlier outputs (`--no-cache`).
    public var noCache: Bool
    /// The folder command steps run in and `code:` paths are relative to (the spec's folder).
    public var directory: String?
    /// Steps that may run at once (nil: the spec's, else the runner's default).
    public var concurrency: Int?
    /// Command steps are run by workers (`loom worker`) that lease them from the server.
    public var workers: Bool

    public init(noCache: Bool = false, directory: String? = nil, concurrency: Int? = nil, workers: Bool = false) {
        self.noCache = noCache
        self.directory = directory
        self.concurrency = concurrency
        self.workers = workers
    }

    enum CodingKeys: String, CodingKey {
        case noCache = "no_cache", directory, concurrency, workers
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        noCache = try c.decodeIfPresent(Bool.self, forKey: .noCache) ?? false
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency)
        workers = try c.decodeIfPresent(Bool.self, forKey: .workers) ?? false
    }
}

/// A pipeline applied with `loom apply` (or the API): the version whose schedules and triggers
/// the server fires, and the folder its command steps run in.
public struct AppliedPipeline: Sendable, Codable, Hashable {
    public var workspace: String
    public var name: String
    public var version: Int64
    public var directory: String?
    public var appliedBy: String
    public var appliedTime: Millis

    public init(workspace: String = Workspace.defaultName, name: String, version: Int64, directory: String?, appliedBy: String, appliedTime: Millis) {
        self.workspace = workspace
        self.name = name
        self.version = version
        self.directory = directory
        self.appliedBy = appliedBy
        self.appliedTime = appliedTime
    }
}

/// A pipeline of a workspace as listed: its versions and its newest run.
public struct PipelineSummary: Sendable, Codable, Hashable {
    public var name: String
    public var versions: Int64
    public var runs: Int64
    public var lastRun: PipelineRun?

    public init(name: String, versions: Int64, runs: Int64, lastRun: PipelineRun?) {
        self.name = name
        self.versions = versions
        self.runs = runs
        self.lastRun = lastRun
    }
}
