import Foundation
import LoomArtifacts
import LoomCore
import LoomData
import LoomModels
import LoomStore

/// A training job: data, model and where to record it.
public struct TrainingRequest: Sendable {
    public var data: DataSource
    /// Rows to report validation metrics on (and, for trees, to stop early on).
    public var validation: DataSource?
    public var options: TrainingOptions
    /// Experiment name (created if missing); nil: the default experiment.
    public var experiment: String?
    public var runName: String?
    /// Register the model under this name as a new version.
    public var registerAs: String?
    /// Record it in this run (a pipeline step's) instead of a new one in `experiment`.
    public var runID: String?

    public init(data: DataSource, options: TrainingOptions) {
        self.data = data
        self.options = options
    }
}

/// What training recorded.
public struct TrainingRecord: Sendable {
    public var runID: String
    public var experimentID: String
    public var artifactURI: String
    public var result: TrainingResult
    /// Reading the data, training and evaluating.
    public var seconds: Double
    /// Fitting alone (the data in memory, evaluation not counted).
    public var fitSeconds: Double
    public var modelVersion: ModelVersion?
}

extension TrackingService {
    /// Largest model file `predict` reads.
    static let modelFileLimit = 512 << 20

    /// Trains a built-in model and records it as a run: parameters, metrics (`training_*`,
    /// `validation_*`), the datasets as inputs, and artifacts `model/` (the model file and an
    /// MLmodel descriptor) and `evaluation/` (plot, metrics). Bad data or settings fail before
    /// the run is created, so a failed training leaves nothing behind.
    public func trainModel(_ request: TrainingRequest) async throws -> TrainingRecord {
        if let name = request.registerAs { try Validate.modelName(name, path: "register") }
        let (files, input, version) = try await self.files(of: request.data)
        var validationFiles: (files: [TableFile], input: DatasetLineage.Input, version: DatasetVersion?)?
        if let v = request.validation { validationFiles = try await self.files(of: v) }
        let validationList = validationFiles
        let started = Date()
        let options = request.options
        let datasetName = version.map { "\($0.name)@\($0.version)" }
        let (trained, content, validationContent) = try await DataWork.run { () throws -> (TrainingResult, TableContent, TableContent?) in
            let (frame, content) = try Frame.read(files)
            let validation = try validationList.map { try Frame.read($0.files) }
            let result = try Trainer.train(frame, validation: validation?.0, options: options, dataset: (input.digest.isEmpty ? content.digest : input.digest, datasetName))
            return (result, content, validation?.1)
        }
        let fitSeconds = trained.fitSeconds
        let seconds = Date().timeIntervalSince(started)
        var result = trained
        // Data made by a transform: the model carries the fitted transform, so it takes raw rows.
        if let version, var plan = try fittedTransform(of: version) {
            plan.steps.removeAll { $0.kind == .filter }
            result.model.preprocessing = plan
            if let source = try? JSONDecoder().decode(DatasetLineage.self, from: Data((version.lineage ?? "").utf8)).inputs.first,
                let name = source.name, let raw = try? await datasetVersion(name: name, version: source.version),
                let schema = raw.schema, let parsed = try? JSONDecoder().decode(DatasetSchema.self, from: Data(schema.utf8)) {
                result.model.rawInputs = parsed.columns.filter { $0.name != result.model.target }.map { c in
                    let type = switch c.type {
                    case .integer: "long"
                    case .number: "double"
                    case .boolean: "boolean"
                    default: "string"
                    }
                    return LoomModel.RawInput(name: c.name, type: type)
                }
            }
        }

        let model = result.model
        let modelTags = [Tag(key: "loom.model.family", value: model.family.rawValue), Tag(key: "loom.model.task", value: model.task.rawValue)]
        let run: Run
        if let given = request.runID {
            run = try await self.run(id: given)
            try await logBatch(runID: given, metrics: [], params: [], tags: modelTags)
        } else {
            let experimentID: String
            if let name = request.experiment {
                if let found = try? await experiment(named: name) {
                    experimentID = found.id
                } else {
                    experimentID = try await createExperiment(name: name, artifactLocation: nil, tags: []).id
                }
            } else {
                experimentID = "0"
            }
            run = try await createRun(
                experimentID: experimentID, userID: AuditContext.current.actor, startTime: Int64(started.timeIntervalSince1970 * 1000),
                runName: request.runName ?? "train-\(model.family.rawValue)-\(model.target)",
                tags: modelTags + [Tag(key: "mlflow.source.type", value: "LOCAL"), Tag(key: "mlflow.source.name", value: "loom train")])
        }
        let experimentID = run.info.experimentID
        let runID = run.info.runID
        do {
            var params = options.logged.map { Param(key: $0.0, value: $0.1) }
            params.append(Param(key: "task", value: model.task.rawValue))
            params.append(Param(key: "features", value: "\(model.features.count)"))
            params.append(Param(key: "training_rows", value: "\(model.training.rows)"))
            params.append(Param(key: "dataset_digest", value: content.digest))
            let time = Int64(Date().timeIntervalSince1970 * 1000)
            var metrics = result.training.logged(prefix: "training_").map { Metric(key: $0.0, value: $0.1, timestamp: time, step: 0) }
            if let v = result.validation {
                metrics += v.logged(prefix: "validation_").map { Metric(key: $0.0, value: $0.1, timestamp: time, step: 0) }
            }
            metrics.append(Metric(key: "fit_seconds", value: fitSeconds, timestamp: time, step: 0))
            if let iterations = result.iterations { metrics.append(Metric(key: "iterations", value: Double(iterations), timestamp: time, step: 0)) }
            if let losses = model.ensemble?.validationLoss {
                for (i, loss) in losses.enumerated() { metrics.append(Metric(key: "validation_loss", value: loss, timestamp: time, step: Int64(i))) }
            }
            for start in stride(from: 0, to: metrics.count, by: 1000) {
                try await logBatch(runID: runID, metrics: Array(metrics[start..<min(start + 1000, metrics.count)]), params: start == 0 ? params : [], tags: [])
            }
            var inputs = [DatasetInput(tags: [Tag(key: "mlflow.data.context", value: "training")], dataset: Self.loggedDataset(input, version, content, files: files))]
            if let validationFiles, let validationContent {
                inputs.append(DatasetInput(tags: [Tag(key: "mlflow.data.context", value: "validation")],
                                           dataset: Self.loggedDataset(validationFiles.input, validationFiles.version, validationContent, files: validationFiles.files)))
            }
            try await logInputs(runID: runID, datasets: inputs, models: [])
            // Lineage: the data the model was trained on.
            let trainedOn = version.map { LineageNodes.dataset($0.name, $0.version) } ?? LineageNodes.file(input.path ?? "")
            try? await store.addLineageEdges([LineageEdge(
                workspace: AuditContext.current.workspace ?? Workspace.defaultName, source: trainedOn,
                target: LineageNodes.artifact("runs:/\(runID)/model"), relation: "trained", creationTime: Clock.nowMillis())])

            guard let root = try runArtifactRoot(run.info) else { throw LoomError.invalidState("the run's artifacts are not stored by Loom") }
            _ = try await artifacts.write(try root.appending("model/\(LoomModel.fileName)"), bytes: try model.encoded())
            _ = try await artifacts.write(try root.appending("model/MLmodel"), bytes: Array(Self.mlmodel(model, runID: runID).utf8))
            _ = try await artifacts.write(try root.appending("evaluation/\(result.plot.name)"), bytes: Array(result.plot.svg.utf8))
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            struct Report: Encodable { var training: Evaluation; var validation: Evaluation? }
            _ = try await artifacts.write(try root.appending("evaluation/metrics.json"), bytes: try encoder.encode(Report(training: result.training, validation: result.validation)))
            _ = try await updateRun(id: runID, status: .finished, endTime: Int64(Date().timeIntervalSince1970 * 1000), runName: nil)
        } catch {
            _ = try? await updateRun(id: runID, status: .failed, endTime: Int64(Date().timeIntervalSince1970 * 1000), runName: nil)
            throw error
        }
        var registered: ModelVersion?
        if let name = request.registerAs {
            if (try? await registeredModel(name: name)) == nil {
                _ = try await createRegisteredModel(name: name, description: nil, tags: [])
            }
            registered = try await createModelVersion(
                name: name, source: "runs:/\(runID)/model", runID: runID, runLink: nil, description: nil,
                tags: [Tag(key: "loom.model.family", value: model.family.rawValue)], modelID: nil, userID: AuditContext.current.actor)
        }
        return TrainingRecord(runID: runID, experimentID: experimentID, artifactURI: run.info.artifactURI, result: result, seconds: seconds, fitSeconds: fitSeconds, modelVersion: registered)
    }

    static func loggedDataset(_ input: DatasetLineage.Input, _ version: DatasetVersion?, _ content: TableContent, files: [TableFile]) -> Dataset {
        if let version {
            return Dataset(name: version.name, digest: DatasetVersion.loggedDigest(version.digest), sourceType: "loom", source: "loom:datasets/\(version.name)/\(version.version)", schema: version.schema)
        }
        let path = input.path ?? files.first?.path ?? ""
        var stem = URL(fileURLWithPath: path).lastPathComponent
        for suffix in [".gz", ".csv", ".tsv", ".jsonl", ".ndjson"] where stem.lowercased().hasSuffix(suffix) { stem = String(stem.dropLast(suffix.count)) }
        return Dataset(name: stem.isEmpty ? "data" : stem, digest: DatasetVersion.loggedDigest(content.digest), sourceType: "local", source: URL(fileURLWithPath: path).standardizedFileURL.path)
    }

    /// An MLmodel descriptor, so that MLflow tools list the model and its signature.
    static func mlmodel(_ model: LoomModel, runID: String) -> String {
        func json(_ v: Any) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys])) ?? Data("[]".utf8)
            return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "'", with: "''")
        }
        let output: [[String: String]] = model.task == .regression
            ? [["name": model.target, "type": "double"]] : [["name": model.target, "type": "string"]]
        return """
            artifact_path: model
            flavors:
              loom:
                family: \(model.family.rawValue)
                format_version: \(model.formatVersion)
                model_file: \(LoomModel.fileName)
                task: \(model.task.rawValue)
            run_id: \(runID)
            signature:
              inputs: '\(json(model.signatureInputs))'
              outputs: '\(json(output))'
            utc_time_created: '\(model.training.created)'

            """
    }

    /// Loads a model: a `loom-model.json` file or a folder holding one, `runs:/<run>/<path>`,
    /// `models:/<name>/<version>` or `models:/<name>@<alias>`.
    public func loadModel(_ reference: String) async throws -> LoomModel {
        if reference.hasPrefix("models:/") {
            let rest = String(reference.dropFirst("models:/".count))
            let version: ModelVersion
            if let at = rest.firstIndex(of: "@") {
                version = try await modelVersion(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]))
            } else {
                let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw LoomError.invalidParameter("a model reference is models:/NAME/VERSION or models:/NAME@ALIAS") }
                version = try await modelVersion(name: parts[0], version: parts[1])
            }
            guard version.source.hasPrefix("runs:/") else {
                throw LoomError.invalidParameter("model version \(version.name)/\(version.version) is not a Loom model (source \(version.source))")
            }
            return try await loadModel(version.source)
        }
        if reference.hasPrefix("runs:/") {
            let parts = reference.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).map(String.init)
            guard let runID = parts.first, !runID.isEmpty else { throw LoomError.invalidParameter("a run reference is runs:/RUN_ID/PATH") }
            let info = try await run(id: runID).info
            guard let root = try runArtifactRoot(info) else { throw LoomError.invalidState("the run's artifacts are not stored by Loom") }
            var path = parts.count > 1 ? try root.appending(parts[1]) : root
            if !path.string.hasSuffix(".json") { path = try path.appending(LoomModel.fileName) }
            guard try await artifacts.fileSize(path) != nil else { throw LoomError.notFound("no Loom model at \(reference)") }
            return try LoomModel.decode(Data(try await artifacts.readAll(path, limit: Self.modelFileLimit)))
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: reference, isDirectory: &isFolder) else {
            throw LoomError.notFound("no model at \(reference)")
        }
        let file = isFolder.boolValue ? URL(fileURLWithPath: reference).appendingPathComponent(LoomModel.fileName).path : reference
        guard let data = FileManager.default.contents(atPath: file) else { throw LoomError.notFound("no model file at \(file)") }
        return try LoomModel.decode(data)
    }
}
