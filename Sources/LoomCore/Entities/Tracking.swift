/// Milliseconds since the Unix epoch, the unit MLflow uses for every timestamp.
public typealias Millis = Int64

/// Whether an entity is live or soft-deleted (restorable).
public enum LifecycleStage: String, Sendable, Codable, Hashable {
    case active
    case deleted
}

/// Which lifecycle stages a listing includes (MLflow's `ViewType`).
public enum ViewType: String, Sendable, Codable, Hashable {
    case activeOnly = "ACTIVE_ONLY"
    case deletedOnly = "DELETED_ONLY"
    case all = "ALL"

    /// Parses MLflow's view type names and the numeric enum values the proto allows.
    public init?(mlflowName: String) {
        switch mlflowName.uppercased() {
        case "ACTIVE_ONLY", "1": self = .activeOnly
        case "DELETED_ONLY", "2": self = .deletedOnly
        case "ALL", "3": self = .all
        default: return nil
        }
    }

    public var stages: [LifecycleStage] {
        switch self {
        case .activeOnly: return [.active]
        case .deletedOnly: return [.deleted]
        case .all: return [.active, .deleted]
        }
    }
}

/// A key/value tag on any entity.
public struct Tag: Sendable, Codable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// A run parameter; immutable once logged.
public typealias Param = Tag

/// One point of a metric series.
public struct Metric: Sendable, Codable, Hashable {
    public var key: String
    public var value: Double
    public var timestamp: Millis
    public var step: Int64
    /// The logged model this point was recorded against, if any (MLflow 3).
    public var modelID: String?
    public var datasetName: String?
    public var datasetDigest: String?
    /// Set when a metric is returned outside its run (e.g. bulk history).
    public var runID: String?

    public init(
        key: String, value: Double, timestamp: Millis, step: Int64 = 0, modelID: String? = nil,
        datasetName: String? = nil, datasetDigest: String? = nil, runID: String? = nil
    ) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
        self.modelID = modelID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
        self.runID = runID
    }
}

/// An experiment groups runs, logged models and datasets.
public struct Experiment: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var artifactLocation: String
    public var lifecycleStage: LifecycleStage
    public var creationTime: Millis
    public var lastUpdateTime: Millis
    public var tags: [Tag]
    public var workspace: String

    public init(
        id: String, name: String, artifactLocation: String, lifecycleStage: LifecycleStage,
        creationTime: Millis, lastUpdateTime: Millis, tags: [Tag] = [], workspace: String = Workspace.defaultName
    ) {
        self.id = id
        self.name = name
        self.artifactLocation = artifactLocation
        self.lifecycleStage = lifecycleStage
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.tags = tags
        self.workspace = workspace
    }
}

/// The state of a run.
public enum RunStatus: String, Sendable, Codable, Hashable, CaseIterable {
    case running = "RUNNING"
    case scheduled = "SCHEDULED"
    case finished = "FINISHED"
    case failed = "FAILED"
    case killed = "KILLED"

    /// Parses names and the proto's numeric values.
    public init?(mlflowName: String) {
        switch mlflowName.uppercased() {
        case "RUNNING", "1": self = .running
        case "SCHEDULED", "2": self = .scheduled
        case "FINISHED", "3": self = .finished
        case "FAILED", "4": self = .failed
        case "KILLED", "5": self = .killed
        default: return nil
        }
    }

    public var isTerminal: Bool { self == .finished || self == .failed || self == .killed }
}

/// The metadata of a run.
public struct RunInfo: Sendable, Codable, Hashable {
    public var runID: String
    public var runName: String
    public var experimentID: String
    public var userID: String
    public var status: RunStatus
    public var startTime: Millis
    public var endTime: Millis?
    public var artifactURI: String
    public var lifecycleStage: LifecycleStage

    public init(
        runID: String, runName: String, experimentID: String, userID: String, status: RunStatus,
        startTime: Millis, endTime: Millis?, artifactURI: String, lifecycleStage: LifecycleStage
    ) {
        self.runID = runID
        self.runName = runName
        self.experimentID = experimentID
        self.userID = userID
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.artifactURI = artifactURI
        self.lifecycleStage = lifecycleStage
    }
}

/// A dataset as referenced by a run input: identified by name and content digest.
public struct Dataset: Sendable, Codable, Hashable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var schema: String?
    public var profile: String?

    public init(name: String, digest: String, sourceType: String, source: String, schema: String? = nil, profile: String? = nil) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
    }
}

/// A dataset used by a run, with input tags such as `mlflow.data.context`.
public struct DatasetInput: Sendable, Codable, Hashable {
    public var tags: [Tag]
    public var dataset: Dataset
    public init(tags: [Tag], dataset: Dataset) {
        self.tags = tags
        self.dataset = dataset
    }
}

/// A logged model consumed by (input) or produced by (output) a run.
public struct ModelIO: Sendable, Codable, Hashable {
    public var modelID: String
    public var step: Int64?
    public init(modelID: String, step: Int64? = nil) {
        self.modelID = modelID
        self.step = step
    }
}

/// A full run: info plus latest metrics, params, tags, inputs and outputs.
public struct Run: Sendable, Codable, Hashable {
    public var info: RunInfo
    /// The latest value of each metric (max step, then max timestamp).
    public var metrics: [Metric]
    public var params: [Param]
    public var tags: [Tag]
    public var datasetInputs: [DatasetInput]
    public var modelInputs: [ModelIO]
    public var modelOutputs: [ModelIO]

    public init(
        info: RunInfo, metrics: [Metric] = [], params: [Param] = [], tags: [Tag] = [],
        datasetInputs: [DatasetInput] = [], modelInputs: [ModelIO] = [], modelOutputs: [ModelIO] = []
    ) {
        self.info = info
        self.metrics = metrics
        self.params = params
        self.tags = tags
        self.datasetInputs = datasetInputs
        self.modelInputs = modelInputs
        self.modelOutputs = modelOutputs
    }
}

/// Status of a logged model (MLflow 3).
public enum LoggedModelStatus: String, Sendable, Codable, Hashable {
    case pending = "LOGGED_MODEL_PENDING"
    case ready = "LOGGED_MODEL_READY"
    case failed = "LOGGED_MODEL_UPLOAD_FAILED"

    public init?(mlflowName: String) {
        switch mlflowName.uppercased() {
        case "LOGGED_MODEL_PENDING", "1": self = .pending
        case "LOGGED_MODEL_READY", "2": self = .ready
        case "LOGGED_MODEL_UPLOAD_FAILED", "3": self = .failed
        default: return nil
        }
    }
}

/// A model logged in an experiment (MLflow 3's first-class `LoggedModel`).
public struct LoggedModel: Sendable, Codable, Hashable {
    public var modelID: String
    public var experimentID: String
    public var name: String
    public var artifactLocation: String
    public var creationTimestamp: Millis
    public var lastUpdatedTimestamp: Millis
    public var status: LoggedModelStatus
    public var statusMessage: String?
    public var modelType: String?
    public var sourceRunID: String?
    public var lifecycleStage: LifecycleStage
    public var tags: [Tag]
    public var params: [Param]
    public var metrics: [Metric]

    public init(
        modelID: String, experimentID: String, name: String, artifactLocation: String, creationTimestamp: Millis,
        lastUpdatedTimestamp: Millis, status: LoggedModelStatus, statusMessage: String? = nil, modelType: String? = nil,
        sourceRunID: String? = nil, lifecycleStage: LifecycleStage = .active, tags: [Tag] = [], params: [Param] = [], metrics: [Metric] = []
    ) {
        self.modelID = modelID
        self.experimentID = experimentID
        self.name = name
        self.artifactLocation = artifactLocation
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.status = status
        self.statusMessage = statusMessage
        self.modelType = modelType
        self.sourceRunID = sourceRunID
        self.lifecycleStage = lifecycleStage
        self.tags = tags
        self.params = params
        self.metrics = metrics
    }
}
