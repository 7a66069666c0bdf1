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
        /// A stored flow (docs/flows.md) run in the server's process: a request's JSON object is
        /// its inputs.
        case flow
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
        /// flow: the stored flow, pinned to `NAME@VERSION` when deployed.
        public var flow: String?

        public init(
            command: String? = nil, replicas: Int? = nil, directory: String? = nil, environment: [String: String]? = nil, url: String? = nil,
            invocationPath: String? = nil, healthPath: String? = nil, startupSeconds: Double? = nil, flow: String? = nil
        ) {
            self.flow = flow
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

/// A gate a rollout's new deployment must pass: a measured value of the candidate compared with
/// an absolute bound and/or with the current deployment's (docs/deployment.md, "Gates").
public struct RolloutGate: Sendable, Codable, Hashable {
    /// `error_rate` (answers that are not 2xx, over requests), `latency_p50`, `latency_p99`,
    /// `latency_mean` (milliseconds), or `run:METRIC`: a metric logged in the model version's
    /// run (a quality metric: `run:validation_auc`).
    public var metric: String
    /// The candidate's value must be at most this.
    public var max: Double?
    /// The candidate's value must be at least this.
    public var min: Double?
    /// At most this many times the current deployment's value.
    public var maxRatio: Double?
    /// At most the current deployment's value plus this.
    public var maxIncrease: Double?
    /// At least the current deployment's value plus this (negative: a tolerated drop).
    public var minDelta: Double?

    public init(metric: String, max: Double? = nil, min: Double? = nil, maxRatio: Double? = nil, maxIncrease: Double? = nil, minDelta: Double? = nil) {
        self.metric = metric
        self.max = max
        self.min = min
        self.maxRatio = maxRatio
        self.maxIncrease = maxIncrease
        self.minDelta = minDelta
    }

    /// Errors at most 1 point above the current deployment's; p99 latency at most 50 ms above.
    public static let defaults = [RolloutGate(metric: "error_rate", maxIncrease: 0.01), RolloutGate(metric: "latency_p99", maxIncrease: 50)]
}

/// A check of the new deployment before it gets any traffic: rows of a registered dataset sent
/// to it directly, its answers checked and scored (docs/deployment.md, "Validation").
public struct RolloutValidation: Sendable, Codable, Hashable {
    public struct Bound: Sendable, Codable, Hashable {
        public var min: Double?
        public var max: Double?
        public init(min: Double? = nil, max: Double? = nil) {
            self.min = min
            self.max = max
        }
    }

    /// `NAME` or `NAME@VERSION` of a registered dataset.
    public var dataset: String
    /// The column holding the truth (not sent); needed by `accuracy`, `mae`, `rmse`.
    public var target: String?
    /// `accuracy` (classifiers), `mae`, `rmse` (regression), `error_rate` (rows answered with an
    /// error, or with no prediction) with their bounds.
    public var thresholds: [String: Bound]
    /// Every prediction must be one of these (as text), when given.
    public var allowed: [String]?
    /// Every numeric prediction must lie in this range, when given.
    public var range: Bound?
    /// Rows sent at most (the first ones), in requests of 100.
    public var maxRows: Int

    public init(dataset: String, target: String? = nil, thresholds: [String: Bound] = [:], allowed: [String]? = nil, range: Bound? = nil, maxRows: Int = 1000) {
        self.dataset = dataset
        self.target = target
        self.thresholds = thresholds
        self.allowed = allowed
        self.range = range
        self.maxRows = maxRows
    }
}

/// An evaluation the new deployment of a flow rollout must pass before it gets traffic
/// (docs/flows.md, "Rolling out a flow"): a `kind: evaluation` spec run against the new
/// deployment's flow over a registered dataset, its gates deciding.
public struct RolloutEvaluation: Sendable, Codable, Hashable {
    /// The evaluation spec's YAML (its `flow` and `dataset` are replaced by the rollout's).
    public var spec: String
    /// `NAME` or `NAME@VERSION` of a registered dataset.
    public var dataset: String
    /// Gates that replace the spec's `fail_under`.
    public var failUnder: String?

    public init(spec: String, dataset: String, failUnder: String? = nil) {
        self.spec = spec
        self.dataset = dataset
        self.failUnder = failUnder
    }
}

/// What a rollout does, as asked (`loom endpoint rollout`, or a spec through `loom apply -f`).
public struct RolloutSpec: Sendable, Codable, Hashable {
    public enum Strategy: String, Sendable, Codable, Hashable, CaseIterable {
        case canary
        case blueGreen = "blue-green"
    }

    public var strategy: Strategy
    /// The model the new deployment serves (`models:/NAME/VERSION` or `models:/NAME@ALIAS`).
    public var model: String
    /// The new deployment's name (made if it does not exist; then it copies the current one's
    /// runtime and settings).
    public var deployment: String
    /// canary: live percentages the new deployment gets, in order; the last is 100.
    public var steps: [Int]
    /// blue-green: the share of live requests mirrored to the new deployment before the switch
    /// (0: none).
    public var mirrorPercent: Int
    /// How long each step lasts once applied (and how long blue-green watches after the switch).
    public var bakeSeconds: Double
    /// How often gates are judged during a step.
    public var gateIntervalSeconds: Double
    /// A judgement needs at least this many requests to each deployment in its window;
    /// fewer at a step's end pauses the rollout for a person to decide.
    public var minRequests: Int
    public var gates: [RolloutGate]
    /// Checked before any traffic moves (blue-green's first stage; canary's too when given).
    public var validation: RolloutValidation?
    /// A flow rollout: the stored flow (`NAME@VERSION`) the new deployment serves.
    public var flow: String?
    /// A flow rollout: the evaluation the new deployment must pass before any traffic moves.
    public var evaluation: RolloutEvaluation?

    public init(
        strategy: Strategy, model: String, deployment: String, steps: [Int] = [5, 25, 50, 100], mirrorPercent: Int = 0, bakeSeconds: Double = 300,
        gateIntervalSeconds: Double = 30, minRequests: Int = 20, gates: [RolloutGate] = RolloutGate.defaults, validation: RolloutValidation? = nil,
        flow: String? = nil, evaluation: RolloutEvaluation? = nil
    ) {
        self.flow = flow
        self.evaluation = evaluation
        self.strategy = strategy
        self.model = model
        self.deployment = deployment
        self.steps = steps
        self.mirrorPercent = mirrorPercent
        self.bakeSeconds = bakeSeconds
        self.gateIntervalSeconds = gateIntervalSeconds
        self.minRequests = minRequests
        self.gates = gates
        self.validation = validation
    }
}

/// A rollout of a new deployment on an endpoint, driven by the server to its end.
public struct Rollout: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable, CaseIterable {
        case running, paused
        /// The new deployment has all live traffic.
        case succeeded
        /// A gate failed; the traffic map was restored.
        case rolledBack = "rolled_back"
        /// Stopped by a person; the traffic map was restored.
        case aborted

        public var isActive: Bool { self == .running || self == .paused }
    }

    public var id: String
    public var workspace: String
    public var endpoint: String
    public var spec: RolloutSpec
    /// The deployment that had all live traffic when it started.
    public var baseline: String
    public var state: State
    /// The stage it is at (docs/deployment.md): canary steps, or blue-green mirror then switch.
    public var stage: Int
    /// When the current stage's traffic was applied (nil: not yet).
    public var stageStarted: Millis?
    /// The traffic map and mirror before it started, restored by a rollback or an abort.
    public var previousTraffic: [String: Int]
    public var previousMirror: [String: Int]
    public var message: String?
    /// A person's `promote`, `pause`, `resume` or `abort`, waiting for the replica driving the
    /// rollout to carry it out (at its next look, within a second).
    public var requestedAction: String?
    public var requestedBy: String?
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis
    public var endTime: Millis?

    public init(
        id: String, workspace: String = Workspace.defaultName, endpoint: String, spec: RolloutSpec, baseline: String, state: State = .running,
        stage: Int = 0, stageStarted: Millis? = nil, previousTraffic: [String: Int], previousMirror: [String: Int], message: String? = nil,
        requestedAction: String? = nil, requestedBy: String? = nil, createdBy: String, creationTime: Millis, lastUpdatedTime: Millis? = nil,
        endTime: Millis? = nil
    ) {
        self.id = id
        self.workspace = workspace
        self.endpoint = endpoint
        self.spec = spec
        self.baseline = baseline
        self.state = state
        self.stage = stage
        self.stageStarted = stageStarted
        self.previousTraffic = previousTraffic
        self.previousMirror = previousMirror
        self.message = message
        self.requestedAction = requestedAction
        self.requestedBy = requestedBy
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
        self.endTime = endTime
    }
}

/// One decision of a rollout, with what it was based on.
public struct RolloutDecision: Sendable, Codable, Hashable {
    public var rolloutID: String
    public var sequence: Int64
    public var time: Millis
    /// `start`, `step`, `mirror`, `switch`, `gate`, `promote`, `rollback`, `pause`, `resume`,
    /// `abort`, `inconclusive`, `resume-after-restart`.
    public var kind: String
    /// `passed`, `failed`, `applied`, `done`, ...
    public var outcome: String
    /// A sentence a person can read.
    public var summary: String
    /// Gate values and thresholds (JSON), when the decision judged gates.
    public var detail: String?
    public var actor: String

    public init(rolloutID: String, sequence: Int64 = 0, time: Millis, kind: String, outcome: String, summary: String, detail: String? = nil, actor: String) {
        self.rolloutID = rolloutID
        self.sequence = sequence
        self.time = time
        self.kind = kind
        self.outcome = outcome
        self.summary = summary
        self.detail = detail
        self.actor = actor
    }
}
