import LoomArtifacts
import LoomCore

// The JSON shapes of MLflow's REST API (snake_case, int64 as numbers), built from Loom's entities.

struct MLTag: Encodable, Sendable {
    let key: String
    let value: String
    init(_ t: Tag) { key = t.key; value = t.value }
}

struct MLExperiment: Encodable, Sendable {
    let experiment_id: String
    let name: String
    let artifact_location: String
    let lifecycle_stage: String
    let last_update_time: Int64
    let creation_time: Int64
    let tags: [MLTag]?

    init(_ e: Experiment) {
        experiment_id = e.id
        name = e.name
        artifact_location = e.artifactLocation
        lifecycle_stage = e.lifecycleStage.rawValue
        last_update_time = e.lastUpdateTime
        creation_time = e.creationTime
        tags = e.tags.isEmpty ? nil : e.tags.map(MLTag.init)
    }
}

struct MLMetric: Encodable, Sendable {
    let key: String
    let value: Double
    let timestamp: Int64
    let step: Int64
    let run_id: String?
    let model_id: String?
    let dataset_name: String?
    let dataset_digest: String?

    init(_ m: Metric) {
        key = m.key
        value = m.value
        timestamp = m.timestamp
        step = m.step
        run_id = m.runID
        model_id = m.modelID
        dataset_name = m.datasetName
        dataset_digest = m.datasetDigest
    }
}

struct MLRunInfo: Encodable, Sendable {
    let run_id: String
    let run_uuid: String
    let run_name: String
    let experiment_id: String
    let user_id: String
    let status: String
    let start_time: Int64
    let end_time: Int64?
    let artifact_uri: String
    let lifecycle_stage: String

    init(_ i: RunInfo) {
        run_id = i.runID
        run_uuid = i.runID
        run_name = i.runName
        experiment_id = i.experimentID
        user_id = i.userID
        status = i.status.rawValue
        start_time = i.startTime
        end_time = i.endTime
        artifact_uri = i.artifactURI
        lifecycle_stage = i.lifecycleStage.rawValue
    }
}

struct MLDataset: Encodable, Sendable {
    let name: String
    let digest: String
    let source_type: String
    let source: String
    let schema: String?
    let profile: String?
    init(_ d: Dataset) {
        name = d.name
        digest = d.digest
        source_type = d.sourceType
        source = d.source
        schema = d.schema
        profile = d.profile
    }
}

struct MLDatasetInput: Encodable, Sendable {
    let tags: [MLTag]?
    let dataset: MLDataset
    init(_ d: DatasetInput) {
        tags = nonEmpty(d.tags.map(MLTag.init))
        dataset = MLDataset(d.dataset)
    }
}

struct MLModelInput: Encodable, Sendable {
    let model_id: String
    init(_ m: ModelIO) { model_id = m.modelID }
}

struct MLModelOutput: Encodable, Sendable {
    let model_id: String
    let step: Int64
    init(_ m: ModelIO) { model_id = m.modelID; step = m.step ?? 0 }
}

/// Proto-JSON omits empty repeated fields; so do we.
func nonEmpty<T>(_ a: [T]) -> [T]? { a.isEmpty ? nil : a }

struct MLRun: Encodable, Sendable {
    struct Data: Encodable, Sendable {
        let metrics: [MLMetric]?
        let params: [MLTag]?
        let tags: [MLTag]?
    }
    struct Inputs: Encodable, Sendable {
        let dataset_inputs: [MLDatasetInput]?
        let model_inputs: [MLModelInput]?
    }
    struct Outputs: Encodable, Sendable {
        let model_outputs: [MLModelOutput]?
    }
    let info: MLRunInfo
    let data: Data
    let inputs: Inputs
    let outputs: Outputs?

    init(_ r: Run) {
        info = MLRunInfo(r.info)
        data = Data(metrics: nonEmpty(r.metrics.map(MLMetric.init)), params: nonEmpty(r.params.map(MLTag.init)), tags: nonEmpty(r.tags.map(MLTag.init)))
        inputs = Inputs(dataset_inputs: nonEmpty(r.datasetInputs.map(MLDatasetInput.init)), model_inputs: nonEmpty(r.modelInputs.map(MLModelInput.init)))
        outputs = r.modelOutputs.isEmpty ? nil : Outputs(model_outputs: r.modelOutputs.map(MLModelOutput.init))
    }
}

struct MLLoggedModel: Encodable, Sendable {
    struct Info: Encodable, Sendable {
        let model_id: String
        let experiment_id: String
        let name: String
        let creation_timestamp_ms: Int64
        let last_updated_timestamp_ms: Int64
        let artifact_uri: String
        let status: String
        let status_message: String?
        let model_type: String?
        let source_run_id: String?
        let tags: [MLTag]?
    }
    struct Data: Encodable, Sendable {
        let params: [MLTag]?
        let metrics: [MLMetric]?
    }
    let info: Info
    let data: Data

    init(_ m: LoggedModel) {
        info = Info(model_id: m.modelID, experiment_id: m.experimentID, name: m.name, creation_timestamp_ms: m.creationTimestamp,
                    last_updated_timestamp_ms: m.lastUpdatedTimestamp, artifact_uri: m.artifactLocation, status: m.status.rawValue,
                    status_message: m.statusMessage, model_type: m.modelType, source_run_id: m.sourceRunID, tags: nonEmpty(m.tags.map(MLTag.init)))
        data = Data(params: nonEmpty(m.params.map(MLTag.init)), metrics: nonEmpty(m.metrics.map(MLMetric.init)))
    }
}

struct MLAlias: Encodable, Sendable {
    let alias: String
    let version: String
}

struct MLModelVersion: Encodable, Sendable {
    let name: String
    let version: String
    let creation_timestamp: Int64
    let last_updated_timestamp: Int64
    let user_id: String?
    let current_stage: String
    let description: String?
    let source: String
    let run_id: String?
    let status: String
    let status_message: String?
    let tags: [MLTag]?
    let run_link: String?
    let aliases: [String]?
    let model_id: String?

    init(_ v: ModelVersion) {
        name = v.name
        version = v.version
        creation_timestamp = v.creationTimestamp
        last_updated_timestamp = v.lastUpdatedTimestamp
        user_id = v.userID
        current_stage = v.currentStage.rawValue
        description = v.description
        source = v.source
        run_id = v.runID
        status = v.status.rawValue
        status_message = v.statusMessage
        tags = v.tags.isEmpty ? nil : v.tags.map(MLTag.init)
        run_link = v.runLink
        aliases = v.aliases.isEmpty ? nil : v.aliases
        model_id = v.modelID
    }
}

struct MLRegisteredModel: Encodable, Sendable {
    let name: String
    let creation_timestamp: Int64
    let last_updated_timestamp: Int64
    let description: String?
    let latest_versions: [MLModelVersion]?
    let tags: [MLTag]?
    let aliases: [MLAlias]?

    init(_ m: RegisteredModel) {
        name = m.name
        creation_timestamp = m.creationTimestamp
        last_updated_timestamp = m.lastUpdatedTimestamp
        description = m.description
        latest_versions = m.latestVersions.isEmpty ? nil : m.latestVersions.map(MLModelVersion.init)
        tags = m.tags.isEmpty ? nil : m.tags.map(MLTag.init)
        aliases = m.aliases.isEmpty ? nil : m.aliases.map { MLAlias(alias: $0.alias, version: $0.version) }
    }
}

struct MLFileInfo: Encodable, Sendable {
    let path: String
    let is_dir: Bool
    let file_size: Int64?

    init(path: String, is_dir: Bool, file_size: Int64?) {
        self.path = path
        self.is_dir = is_dir
        self.file_size = file_size
    }

    init(_ e: ArtifactEntry) {
        self.init(path: e.path, is_dir: e.isDirectory, file_size: e.size)
    }
}
