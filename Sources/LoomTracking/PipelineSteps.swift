import Crypto
import Foundation
import LoomArtifacts
import LoomCore
import LoomData
import LoomModels
import LoomPipelines
import LoomStore
import NIOCore

/// The pipeline runner's view of Loom: built-in steps call the same TrackingService methods as
/// the CLI's `datasets`, `train` and registry commands; command steps' inputs and outputs go
/// through the artifact store.
public struct TrackingStepOperations: StepOperations {
    public let tracking: TrackingService
    public let trackingURI: String?
    /// Runs the evaluations of `gate` steps with `with.evaluation` (the server's; nil where
    /// no gateway runs, and such a gate fails saying so).
    public let evaluations: (any EvaluationGateRunner)?

    public init(tracking: TrackingService, trackingURI: String?, evaluations: (any EvaluationGateRunner)? = nil) {
        self.tracking = tracking
        self.trackingURI = trackingURI
        self.evaluations = evaluations
    }

    var artifacts: any ArtifactStore { tracking.artifacts }
    var local: LocalArtifactStore? { tracking.artifacts as? LocalArtifactStore }

    // MARK: Values

    public func resolve(_ text: String, as type: ValueType, workspace: String, directory: String?) async throws -> StepValue {
        switch type {
        case .dataset:
            if let path = Self.existingPath(text, directory) {
                return StepValue(type: .dataset, value: path, digest: try ContentDigest.tree(path, under: nil))
            }
            let named = text.hasSuffix("@latest") ? String(text.dropLast("@latest".count)) : text
            guard case .version(let name, let number) = try DataSource.parse(named) else { throw StepFailure("no dataset or file \(text)") }
            do {
                let v = try await tracking.datasetVersion(name: name, version: number, workspace: workspace)
                return StepValue(type: .dataset, value: "\(v.name)@\(v.version)", digest: v.digest)
            } catch let e as LoomError where e.code == .notFound {
                throw StepFailure(e.message)
            }
        case .model:
            if text.hasPrefix("models:/") {
                let version = try await modelVersion(text)
                return StepValue(type: .model, value: "models:/\(version.name)/\(version.version)", digest: "\(version.source)")
            }
            if text.hasPrefix("runs:/") { return StepValue(type: .model, value: text, digest: text) }
            guard let path = Self.existingPath(text, directory) else { throw StepFailure("no model at \(text)") }
            return StepValue(type: .model, value: path, digest: try ContentDigest.tree(path, under: nil))
        case .file:
            if text.hasPrefix("runs:/") { return StepValue(type: .file, value: text, digest: text) }
            guard let path = Self.existingPath(text, directory) else { throw StepFailure("no file at \(text)") }
            return StepValue(type: .file, value: path, digest: try ContentDigest.tree(path, under: nil))
        default:
            return StepValue(type: type, value: text, digest: text)
        }
    }

    /// `text` as an absolute path when something exists there (relative to the pipeline's folder).
    static func existingPath(_ text: String, _ directory: String?) -> String? {
        guard !text.hasPrefix("models:/"), !text.hasPrefix("runs:/") else { return nil }
        let full = text.hasPrefix("/") ? text : URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath).appendingPathComponent(text).standardizedFileURL.path
        return FileManager.default.fileExists(atPath: full) ? full : nil
    }

    func modelVersion(_ uri: String) async throws -> ModelVersion {
        let rest = String(uri.dropFirst("models:/".count))
        do {
            if let at = rest.firstIndex(of: "@") {
                return try await tracking.modelVersion(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]))
            }
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw StepFailure("a model URI is models:/NAME/VERSION or models:/NAME@ALIAS, not \(uri)") }
            return try await tracking.modelVersion(name: parts[0], version: parts[1])
        } catch let e as LoomError where e.code == .notFound {
            throw StepFailure(e.message)
        }
    }

    // MARK: Tracking runs

    public func startTrackingRun(experiment: String, name: String, parentRunID: String?, tags: [String: String]) async throws -> String {
        let experimentID: String
        if let found = try? await tracking.experiment(named: experiment) {
            experimentID = found.id
        } else {
            do {
                experimentID = try await tracking.createExperiment(name: experiment, artifactLocation: nil, tags: []).id
            } catch let e as LoomError where e.code == .alreadyExists {
                experimentID = try await tracking.experiment(named: experiment).id  // created meanwhile by a parallel step
            }
        }
        var all = tags
        all["mlflow.source.type"] = "JOB"
        all["mlflow.source.name"] = "loom pipeline"
        if let parentRunID { all["mlflow.parentRunId"] = parentRunID }
        let run = try await tracking.createRun(
            experimentID: experimentID, userID: AuditContext.current.actor, startTime: Clock.nowMillis(), runName: name,
            tags: all.sorted { $0.key < $1.key }.map { Tag(key: $0.key, value: $0.value) })
        return run.info.runID
    }

    public func endTrackingRun(id: String, status: String) async {
        // The program of a command step may have ended its run itself (mlflow.end_run()).
        _ = try? await tracking.updateRun(id: id, status: RunStatus(rawValue: status) ?? .failed, endTime: Clock.nowMillis(), runName: nil)
    }

    public func artifactRoot(_ runID: String) async throws -> ArtifactPath {
        guard let root = try tracking.runArtifactRoot(try await tracking.run(id: runID).info) else {
            throw LoomError.invalidState("the run's artifacts are not stored by Loom")
        }
        return root
    }

    // MARK: Command steps

    public func localPath(of value: StepValue, staging: String) async throws -> String {
        switch value.type {
        case .dataset:
            if value.value.hasPrefix("/") { return value.value }
            guard case .version(let name, let number) = try DataSource.parse(value.value) else { throw StepFailure("no dataset \(value.value)") }
            let version = try await tracking.datasetVersion(name: name, version: number)
            guard let stored = version.storagePath else { return version.source }
            if let local { return (local.root as NSString).appendingPathComponent(stored) }
            return try await tracking.download(try ArtifactPath(stored), into: staging)
        case .model, .file:
            if value.value.hasPrefix("/") { return value.value }
            var uri = value.value
            if uri.hasPrefix("models:/") { uri = try await modelVersion(uri).source }
            guard uri.hasPrefix("runs:/") else { throw StepFailure("\(value.value) is not stored by Loom (source \(uri))") }
            let parts = uri.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).map(String.init)
            let root = try await artifactRoot(parts[0])
            let path = parts.count > 1 ? try root.appending(parts[1]) : root
            if let local { return (local.root as NSString).appendingPathComponent(path.string) }
            return try await tracking.download(path, into: staging)
        default:
            return value.value
        }
    }

    public func commitOutput(name: String, type: ValueType, path: String, invocation: StepInvocation) async throws -> StepValue {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isFolder)
        let variable = "$LOOM_OUTPUT_" + name.uppercased()
        switch type {
        case .dataset:
            guard exists, !((try? fm.contentsOfDirectory(atPath: path)) ?? []).isEmpty else {
                throw StepFailure("output '\(name)': the command wrote no data to \(variable)")
            }
            let datasetName = Self.outputDatasetName(invocation, name)
            let inputs = invocation.inputs.values.filter { $0.type == .dataset }.sorted { $0.value < $1.value }.map { v -> DatasetLineage.Input in
                let parts = v.value.split(separator: "@").map(String.init)
                return parts.count == 2 && !v.value.hasPrefix("/")
                    ? DatasetLineage.Input(name: parts[0], version: Int64(parts[1]), digest: v.digest)
                    : DatasetLineage.Input(path: v.value, digest: v.digest)
            }
            let r = try await tracking.registerDataset(
                name: datasetName, path: path, sourceType: "pipeline",
                source: "pipeline \(invocation.pipeline) run \(invocation.pipelineRunID) step \(invocation.step.name)",
                lineage: DatasetLineage(operation: "command", inputs: inputs), workspace: invocation.workspace)
            return StepValue(type: .dataset, value: "\(r.version.name)@\(r.version.version)", digest: r.version.digest)
        case .model, .file:
            let root = try await artifactRoot(invocation.trackingRunID)
            let target = try root.appending(name)
            if exists && (!isFolder.boolValue || !((try? fm.contentsOfDirectory(atPath: path)) ?? []).isEmpty) {
                try await upload(path, to: target)
            } else if try await artifacts.fileSize(target) == nil, (try await artifacts.list(target)).isEmpty {
                throw StepFailure("output '\(name)': the command wrote nothing to \(variable) and logged no artifact '\(name)' to its run")
            }
            return StepValue(type: type, value: "runs:/\(invocation.trackingRunID)/\(name)", digest: try await storedDigest(target))
        default:
            guard exists, !isFolder.boolValue, let data = fm.contents(atPath: path) else {
                throw StepFailure("output '\(name)': the command wrote no value to the file \(variable)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let value: ParameterValue
            do {
                value = try PipelineSpec.convert(.string(text), to: type, name: "output '\(name)'")
            } catch {
                throw StepFailure("output '\(name)' is \(type.rawValue), but the command wrote '\(text.prefix(100))'")
            }
            return StepValue(type: type, value: value.text, digest: value.text)
        }
    }

    /// `PIPELINE-STEP-OUTPUT`, or the step's `with.dataset` option for its single dataset output.
    static func outputDatasetName(_ invocation: StepInvocation, _ output: String) -> String {
        if case .string(let name)? = invocation.options["dataset"], invocation.step.outputs.filter({ $0.type == .dataset }).count == 1 { return name }
        return "\(invocation.pipeline)-\(invocation.step.name)-\(output)"
    }

    func upload(_ path: String, to target: ArtifactPath) async throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            _ = try await artifacts.write(target, from: FileChunks(path: path), maxBytes: nil)
            return
        }
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let relative = enumerator?.nextObject() as? String {
            var sub: ObjCBool = false
            let full = (path as NSString).appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue {
                _ = try await artifacts.write(try target.appending(relative), from: FileChunks(path: full), maxBytes: nil)
            }
        }
    }

    /// `sha256:` of a stored file, or over a stored folder's files (path and digest of each).
    func storedDigest(_ path: ArtifactPath) async throws -> String {
        if try await artifacts.fileSize(path) != nil { return try await artifacts.digest(path).digest }
        var lines: [String] = []
        var stack = [path]
        while let folder = stack.popLast() {
            for entry in try await artifacts.list(folder) {
                let child = try folder.appending((entry.path as NSString).lastPathComponent)
                if entry.isDirectory { stack.append(child) } else { lines.append("\(child.string) \(try await artifacts.digest(child).digest)") }
            }
        }
        lines.sort()
        return "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: Data(lines.joined(separator: "\n").utf8)))
    }

    public func logDestination(trackingRunID: String, name: String, staging: String) async throws -> LogDestination {
        let path = try await artifactRoot(trackingRunID).appending("logs/\(name)")
        if let local {
            let full = (local.root as NSString).appendingPathComponent(path.string)
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            return LogDestination(path: full, isStored: true)
        }
        return LogDestination(path: (staging as NSString).appendingPathComponent(name), isStored: false)
    }

    public func storeLog(trackingRunID: String, name: String, from path: String) async throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        _ = try await artifacts.write(try await artifactRoot(trackingRunID).appending("logs/\(name)"), from: FileChunks(path: path), maxBytes: nil)
    }

    // MARK: Built-in steps

    public func perform(_ invocation: StepInvocation) async throws -> [String: StepValue] {
        let o = Options(values: invocation.options, directory: invocation.directory)
        let workspace = invocation.workspace
        switch invocation.step.kind {
        case .ingest:
            let path = try o.path("path")
            let name = try o.string("dataset")
            let r = try await tracking.registerDataset(
                name: name, path: path, sourceType: "pipeline", source: path, workspace: workspace)
            try await logParams(invocation, ["dataset": "\(r.version.name)@\(r.version.version)", "rows": "\(r.version.rowCount ?? 0)"])
            return ["data": StepValue(type: .dataset, value: "\(r.version.name)@\(r.version.version)", digest: r.version.digest)]

        case .validate:
            let data = try input(invocation, "data")
            let suite = try ExpectationSuite.parse(yaml: try o.document("expectations", key: "expectations"))
            let (files, _, _) = try await tracking.files(of: try source(data), workspace: workspace)
            let report = try await DataWork.run { try ParallelValidate.run(files, suite: suite) }
            let root = try await artifactRoot(invocation.trackingRunID)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            let stored = try await artifacts.write(try root.appending("validation.json"), bytes: try encoder.encode(report))
            let failed = report.results.filter { !$0.passed }
            try await tracking.logBatch(
                runID: invocation.trackingRunID,
                metrics: [Metric(key: "expectations_failed", value: Double(failed.count), timestamp: Clock.nowMillis(), step: 0),
                          Metric(key: "rows", value: Double(report.rows), timestamp: Clock.nowMillis(), step: 0)],
                params: [], tags: [])
            guard failed.isEmpty else {
                let detail = failed.prefix(3).map { "\($0.name) (\($0.failures) of \($0.checked) failed\($0.message.map { ": \($0)" } ?? ""))" }.joined(separator: "; ")
                throw StepFailure("\(data.value): \(failed.count) of \(report.results.count) expectations failed: \(detail)")
            }
            return ["data": data, "report": StepValue(type: .file, value: "runs:/\(invocation.trackingRunID)/validation.json", digest: stored.digest)]

        case .clean:
            let data = try input(invocation, "data")
            var plan = CleanPlan()
            plan.trim = try o.bool("trim") ?? false
            for (column, type) in try o.map("cast") {
                guard let t = ColumnType(rawValue: type), t != .empty else {
                    throw StepFailure("with.cast.\(column): the type must be integer, number, boolean or string")
                }
                plan.cast[column] = t
            }
            for (column, how) in try o.map("impute") { plan.impute[column] = try CleanPlan.imputation(how) }
            plan.dropMissing = try o.list("drop_missing")
            plan.dedupe = try o.list("dedupe")
            plan.dropColumns = try o.list("drop")
            let name = try o.optionalString("dataset") ?? "\(invocation.pipeline)-\(invocation.step.name)"
            let (r, _) = try await tracking.cleanDataset(try source(data), plan: plan, into: name, workspace: workspace)
            return ["data": StepValue(type: .dataset, value: "\(r.version.name)@\(r.version.version)", digest: r.version.digest)]

        case .transform:
            let data = try input(invocation, "data")
            let plan = try TransformPlan.parse(yaml: try o.document("spec", key: "steps"))
            let name = try o.optionalString("dataset") ?? "\(invocation.pipeline)-\(invocation.step.name)"
            let (r, _, _) = try await tracking.transformDataset(try source(data), plan: plan, into: name, workspace: workspace)
            return ["data": StepValue(type: .dataset, value: "\(r.version.name)@\(r.version.version)", digest: r.version.digest)]

        case .split:
            let data = try input(invocation, "data")
            var plan = SplitPlan()
            if let shares = try o.numbers("shares") {
                guard shares.count == 3 else { throw StepFailure("with.shares: give three shares: train, validation, test") }
                plan = SplitPlan(train: shares[0], validation: shares[1], test: shares[2])
            }
            if let seed = try o.int("seed") { plan.seed = UInt64(max(0, seed)) }
            plan.stratify = try o.optionalString("stratify")
            let name = try o.optionalString("dataset") ?? "\(invocation.pipeline)-\(invocation.step.name)"
            let parts = try await tracking.splitDataset(try source(data), plan: plan, into: name, workspace: workspace)
            var out: [String: StepValue] = [:]
            for (part, r) in parts { out[part] = StepValue(type: .dataset, value: "\(r.version.name)@\(r.version.version)", digest: r.version.digest) }
            for part in SplitPlan.parts where out[part] == nil {
                throw StepFailure("output '\(part)' has a share of 0: a split step in a pipeline makes all three parts")
            }
            return out

        case .train:
            let data = try input(invocation, "data")
            let family = try o.string("model")
            guard let f = ModelFamily(rawValue: family) else {
                throw StepFailure("with.model must be one of \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")), not '\(family)'")
            }
            var options = TrainingOptions(family: f, target: try o.string("target"))
            options.features = try o.optionalList("features")
            options.l2 = try o.number("l2")
            var g = GBDTParameters()
            if let v = try o.int("max_iterations") { g.maxIterations = v; options.maxIterations = v }
            if let v = try o.number("learning_rate") { g.learningRate = v }
            if let v = try o.int("max_depth") { g.maxDepth = v }
            if let v = try o.int("max_leaf_nodes") { g.maxLeafNodes = v }
            if let v = try o.int("min_samples_leaf") { g.minSamplesLeaf = v }
            if let v = try o.optionalString("early_stopping") {
                guard let e = GBDTParameters.EarlyStopping(rawValue: v) else { throw StepFailure("with.early_stopping must be auto, on or off") }
                g.earlyStopping = e
            }
            if let v = try o.number("holdout") { g.validationFraction = v }
            if let v = try o.int("seed") { g.seed = UInt64(max(0, v)) }
            if f == .gbdt { try g.check() }
            options.gbdt = g
            var request = TrainingRequest(data: try source(data), options: options)
            if let v = invocation.inputs["validation"] { request.validation = try source(v) }
            request.runID = invocation.trackingRunID
            let record = try await tracking.trainModel(request)
            let root = try await artifactRoot(record.runID)
            return ["model": StepValue(type: .model, value: "runs:/\(record.runID)/model", digest: try await storedDigest(try root.appending("model")))]

        case .evaluate:
            let model = try input(invocation, "model")
            let data = try input(invocation, "data")
            let loaded = try await tracking.loadModel(try modelReference(model))
            let (files, _, _) = try await tracking.files(of: try source(data), workspace: workspace)
            let evaluation = try await DataWork.run { () throws -> Evaluation in
                let (frame, _) = try Frame.read(files)
                return try Trainer.evaluate(loaded, on: frame)
            }
            let metrics = evaluation.logged(prefix: "")
            let time = Clock.nowMillis()
            try await tracking.logBatch(
                runID: invocation.trackingRunID, metrics: metrics.map { Metric(key: $0.0, value: $0.1, timestamp: time, step: 0) },
                params: [Param(key: "model", value: model.value), Param(key: "data", value: data.value)], tags: [])
            let object = JSONValue.object(Dictionary(metrics.map { ($0.0, JSONValue.number($0.1, raw: nil)) }, uniquingKeysWith: { a, _ in a }))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let stored = try await artifacts.write(try await artifactRoot(invocation.trackingRunID).appending("metrics.json"), bytes: try encoder.encode(object))
            return ["metrics": StepValue(type: .file, value: "runs:/\(invocation.trackingRunID)/metrics.json", digest: stored.digest)]

        case .register:
            let model = try input(invocation, "model")
            let name = try o.string("name")
            var source = model.value
            var runID: String?
            if source.hasPrefix("models:/") {
                let v = try await modelVersion(source)
                source = v.source
                runID = v.runID
            } else if source.hasPrefix("runs:/") {
                runID = source.dropFirst("runs:/".count).split(separator: "/").first.map(String.init)
            } else {
                throw StepFailure("input 'model': only a model stored by Loom (runs:/ or models:/) can be registered, not \(source)")
            }
            if (try? await tracking.registeredModel(name: name, workspace: workspace)) == nil {
                do {
                    _ = try await tracking.createRegisteredModel(name: name, description: nil, tags: [], workspace: workspace)
                } catch let e as LoomError where e.code == .alreadyExists {}
            }
            // Registering the same model again (a re-run) gives the version it already has.
            let quoted = name.replacingOccurrences(of: "'", with: "''")
            let existing = try await tracking.searchModelVersions(
                filter: "name = '\(quoted)'", maxResults: 10_000, orderBy: ["version_number DESC"], pageToken: nil, workspace: workspace
            ).items.first { $0.source == source }
            if let existing {
                if let alias = try o.optionalString("alias") {
                    try await tracking.setAlias(name: name, alias: alias, version: existing.version, workspace: workspace)
                }
                try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.registered", value: "models:/\(name)/\(existing.version)")
                return ["model": StepValue(type: .model, value: "models:/\(name)/\(existing.version)", digest: source)]
            }
            let tags = [Tag(key: "loom.pipeline", value: invocation.pipeline), Tag(key: "loom.pipeline.run", value: invocation.pipelineRunID),
                        Tag(key: "loom.pipeline.step", value: invocation.step.name)]
            let version = try await tracking.createModelVersion(
                name: name, source: source, runID: runID, runLink: nil, description: try o.optionalString("description"), tags: tags,
                modelID: nil, userID: AuditContext.current.actor, workspace: workspace)
            if let alias = try o.optionalString("alias") {
                try await tracking.setAlias(name: name, alias: alias, version: version.version, workspace: workspace)
            }
            try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.registered", value: "models:/\(name)/\(version.version)")
            return ["model": StepValue(type: .model, value: "models:/\(name)/\(version.version)", digest: source)]

        case .gate:
            return try await gate(invocation, o)

        case .command:
            throw StepFailure("command steps are run by the runner")
        }
    }

    // MARK: Gates

    /// Passes when every threshold holds and, with `compare`, the candidate is at least as good
    /// (by `min_delta`) as the model holding the alias. The message names each shortfall.
    func gate(_ invocation: StepInvocation, _ o: Options) async throws -> [String: StepValue] {
        if invocation.options["evaluation"] != nil { return try await evaluationGate(invocation, o) }
        guard invocation.inputs["model"] != nil else {
            throw StepFailure("inputs.model: a gate checks a model's metrics, or (with.evaluation) an evaluation of a flow")
        }
        let model = try input(invocation, "model")
        var candidate = try await runMetrics(of: model)
        if let file = invocation.inputs["metrics"] { candidate.merge(try await metricsFile(file)) { _, new in new } }
        var checked: [String] = []
        var shortfalls: [String] = []
        var logged: [Metric] = []
        let time = Clock.nowMillis()
        for (name, rule) in try Self.rules(invocation.options["metrics"]) {
            guard let value = candidate[name] else {
                shortfalls.append("\(name) was not logged (the candidate has: \(candidate.keys.sorted().prefix(12).joined(separator: ", ")))")
                continue
            }
            logged.append(Metric(key: "gate.\(name)", value: value, timestamp: time, step: 0))
            for (op, threshold) in rule {
                if Self.holds(value, op, threshold) {
                    checked.append("\(name) \(Self.show(value)) \(op) \(Self.show(threshold))")
                } else {
                    shortfalls.append("\(name) is \(Self.show(value)), needs \(op) \(Self.show(threshold)) (short by \(Self.show(abs(threshold - value))))")
                }
            }
        }
        if case .object(let compare)? = invocation.options["compare"] {
            let c = Options(values: compare, directory: nil)
            let alias = try c.string("alias")
            let metric = try c.string("metric")
            let minDelta = try c.number("by") ?? 0
            let lowerIsBetter = try c.optionalString("direction").map { $0 == "lower" }
                ?? ["loss", "error", "mae", "mse", "rmse"].contains { metric.lowercased().contains($0) }
            let modelName: String
            if let n = try c.optionalString("model") ?? invocation.registeredName {
                modelName = n
            } else if model.value.hasPrefix("models:/") {
                modelName = String(model.value.dropFirst("models:/".count).split(separator: "/").first ?? "")
            } else {
                throw StepFailure("with.compare.model: name the registered model whose '\(alias)' to compare with")
            }
            if let champion = try? await tracking.modelVersion(name: modelName, alias: alias) {
                let championMetrics = try await runMetrics(of: StepValue(type: .model, value: "models:/\(modelName)/\(champion.version)", digest: ""))
                guard let theirs = championMetrics[metric] else {
                    throw StepFailure("the model holding \(modelName)@\(alias) (version \(champion.version)) has no metric \(metric)")
                }
                guard let ours = candidate[metric] else { throw StepFailure("the candidate has no metric \(metric) to compare") }
                let delta = lowerIsBetter ? theirs - ours : ours - theirs
                logged.append(Metric(key: "gate.delta.\(metric)", value: delta, timestamp: time, step: 0))
                if delta >= minDelta {
                    checked.append("\(metric) \(Self.show(ours)) vs \(modelName)@\(alias) \(Self.show(theirs))")
                } else {
                    shortfalls.append("\(metric) is \(Self.show(ours)) against \(Self.show(theirs)) for \(modelName)@\(alias) (version \(champion.version)): \(lowerIsBetter ? "lower" : "higher") by at least \(Self.show(minDelta)) needed")
                }
            } else {
                checked.append("no model holds \(modelName)@\(alias): nothing to compare with")
            }
        }
        if !logged.isEmpty { try await tracking.logBatch(runID: invocation.trackingRunID, metrics: logged, params: [], tags: []) }
        try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.gate", value: shortfalls.isEmpty ? "passed" : "failed")
        guard shortfalls.isEmpty else { throw StepFailure("gate failed: " + shortfalls.joined(separator: "; ")) }
        try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.gate.checked", value: checked.joined(separator: "; "))
        return [:]
    }

    /// `metrics:` as metric name to the comparisons it must pass: `{min: 0.8, max: 1}`, a number
    /// (a minimum), or text such as `">= 0.8"`.
    /// A gate on an evaluation of a flow (docs/evaluation.md, "Gates in pipelines"): runs the
    /// `kind: evaluation` spec of `with.evaluation` (its flow and dataset, or `with.flow`,
    /// `with.dataset`, the `data` input) as a stored run, logs each variant's means as
    /// metrics of the step, and fails when a gate of `with.fail_under` (else the spec's)
    /// fails for the variants it checks (`with.variant`, default all).
    func evaluationGate(_ invocation: StepInvocation, _ o: Options) async throws -> [String: StepValue] {
        guard let evaluations else {
            throw StepFailure("with.evaluation: evaluation gates run on a Loom server: submit the pipeline run to one (POST /api/v1/pipeline-runs, or loom apply of the pipeline)")
        }
        let specPath = try o.path("evaluation")
        guard let specText = try? String(contentsOfFile: specPath, encoding: .utf8) else { throw StepFailure("with.evaluation: no file at \(specPath)") }
        let folder = URL(fileURLWithPath: specPath).deletingLastPathComponent().path
        func local(_ text: String) -> String? {
            let full = text.hasPrefix("/") ? text : URL(fileURLWithPath: folder).appendingPathComponent(text).standardizedFileURL.path
            return FileManager.default.fileExists(atPath: full) ? full : nil
        }
        let fields = EvaluationGateRequest.specFields(specText)
        // The flow: with.flow (a stored flow), else the spec's flow: a file next to it or a stored flow.
        guard let flowName = try o.optionalString("flow") ?? fields.flow else { throw StepFailure("with.flow: the evaluation names no flow") }
        var flow = flowName
        if try o.optionalString("flow") == nil, let path = local(flowName) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw StepFailure("the evaluation's flow \(path) cannot be read") }
            flow = text
        }
        // The rows: the `data` input, with.dataset, or the spec's dataset (a file next to it or a registered dataset).
        let dataset: EvaluationGateRequest.Rows
        if let data = invocation.inputs["data"] {
            dataset = .registered(data.value)
        } else if let name = try o.optionalString("dataset") ?? fields.dataset {
            if try o.optionalString("dataset") == nil, let path = local(name) { dataset = .file(path) } else { dataset = .registered(name) }
        } else {
            throw StepFailure("with.dataset: the evaluation names no dataset (or give the step a data input)")
        }
        let only = try o.optionalString("variant")
        let result = try await evaluations.runEvaluation(EvaluationGateRequest(
            specText: specText, flow: flow, rows: dataset, failUnder: try o.optionalString("fail_under"), workspace: invocation.workspace))
        let time = Clock.nowMillis()
        var logged: [Metric] = []
        var shortfalls: [String] = []
        var checked: [String] = []
        guard only == nil || result.variants.contains(where: { $0.name == only }) else {
            throw StepFailure("with.variant: the evaluation has no variant \(only!) (it has: \(result.variants.map(\.name).joined(separator: ", ")))")
        }
        for v in result.variants {
            for (metric, mean) in v.means.sorted(by: { $0.key < $1.key }) {
                logged.append(Metric(key: "eval.\(v.name).\(metric)", value: mean, timestamp: time, step: 0))
            }
            guard only == nil || v.name == only else { continue }
            if v.failures.isEmpty { checked.append("\(v.name): \(v.passes.joined(separator: ", "))") } else { shortfalls.append("\(v.name): \(v.failures.joined(separator: "; "))") }
        }
        // The metrics thresholds of a model gate apply to the variants' means too.
        for (name, rule) in try Self.rules(invocation.options["metrics"]) {
            for v in result.variants where only == nil || v.name == only {
                guard let value = v.means[name] else {
                    shortfalls.append("\(v.name): \(name) was not scored (it has: \(v.means.keys.sorted().joined(separator: ", ")))")
                    continue
                }
                for (op, threshold) in rule where !Self.holds(value, op, threshold) {
                    shortfalls.append("\(v.name): \(name) is \(Self.show(value)), needs \(op) \(Self.show(threshold))")
                }
            }
        }
        if !logged.isEmpty { try await tracking.logBatch(runID: invocation.trackingRunID, metrics: logged, params: [], tags: []) }
        try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.evaluation.run", value: result.runID)
        try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.gate", value: shortfalls.isEmpty ? "passed" : "failed")
        guard shortfalls.isEmpty else { throw StepFailure("gate failed (evaluation run \(result.runID)): " + shortfalls.joined(separator: "; ")) }
        try await tracking.setTag(runID: invocation.trackingRunID, key: "loom.gate.checked", value: checked.joined(separator: "; "))
        return [:]
    }

    static func rules(_ value: JSONValue?) throws -> [(String, [(String, Double)])] {
        guard let value else { return [] }
        guard case .object(let object) = value else { throw StepFailure("with.metrics must map metric names to {min, max}") }
        var out: [(String, [(String, Double)])] = []
        for (name, rule) in object.sorted(by: { $0.key < $1.key }) {
            let field = "with.metrics.\(name)"
            func number(_ v: JSONValue) throws -> Double {
                switch v {
                case .number(let d, _): return d
                case .string(let s): if let d = Double(s.trimmingCharacters(in: .whitespaces)) { return d }
                default: break
                }
                throw StepFailure("\(field): expected a number")
            }
            switch rule {
            case .object(let bounds):
                var checks: [(String, Double)] = []
                for (k, v) in bounds.sorted(by: { $0.key < $1.key }) {
                    switch k {
                    case "min": checks.append((">=", try number(v)))
                    case "max": checks.append(("<=", try number(v)))
                    default: throw StepFailure("\(field).\(k): a bound is min or max")
                    }
                }
                out.append((name, checks))
            case .number(let d, _):
                out.append((name, [(">=", d)]))
            case .string(let text):
                out.append((name, [try parseRule(text, field: field)]))
            default:
                throw StepFailure("\(field): expected {min, max}, a number or a rule such as '>= 0.8'")
            }
        }
        return out
    }

    static func parseRule(_ rule: String, field: String) throws -> (String, Double) {
        let text = rule.trimmingCharacters(in: .whitespaces)
        for op in [">=", "<=", "==", ">", "<"] where text.hasPrefix(op) {
            guard let v = Double(text.dropFirst(op.count).trimmingCharacters(in: .whitespaces)) else { break }
            return (op, v)
        }
        throw StepFailure("\(field): '\(rule)' is not a rule such as '>= 0.8' (>=, >, <=, <, ==)")
    }

    static func holds(_ v: Double, _ op: String, _ t: Double) -> Bool {
        switch op {
        case ">=": return v >= t
        case ">": return v > t
        case "<=": return v <= t
        case "<": return v < t
        default: return v == t
        }
    }

    static func show(_ v: Double) -> String { String(format: "%.4g", v) }

    /// The latest metrics of the run that made a model.
    func runMetrics(of model: StepValue) async throws -> [String: Double] {
        var uri = model.value
        if uri.hasPrefix("models:/") {
            let v = try await modelVersion(uri)
            if let runID = v.runID { uri = "runs:/\(runID)/" } else { uri = v.source }
        }
        guard uri.hasPrefix("runs:/"), let runID = uri.dropFirst("runs:/".count).split(separator: "/").first.map(String.init) else { return [:] }
        let run = try await tracking.run(id: runID)
        return Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// A flat JSON object of metric values (an evaluate step's `metrics`).
    func metricsFile(_ file: StepValue) async throws -> [String: Double] {
        let path = try await localPath(of: file, staging: FileManager.default.temporaryDirectory.path)
        guard let data = FileManager.default.contents(atPath: path),
            case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw StepFailure("input 'metrics': \(file.value) is not a JSON object of metrics")
        }
        var out: [String: Double] = [:]
        for (k, v) in object { if case .number(let d, _) = v { out[k] = d } }
        return out
    }

    // MARK: Helpers

    func input(_ invocation: StepInvocation, _ name: String) throws -> StepValue {
        guard let v = invocation.inputs[name] else { throw StepFailure("input '\(name)' has no value") }
        return v
    }

    func source(_ value: StepValue) throws -> DataSource {
        if value.value.hasPrefix("/") { return .path(value.value) }
        return try DataSource.parse(value.value)
    }

    func modelReference(_ value: StepValue) throws -> String { value.value }

    func logParams(_ invocation: StepInvocation, _ params: [String: String]) async throws {
        try await tracking.logBatch(runID: invocation.trackingRunID, metrics: [], params: params.sorted { $0.key < $1.key }.map { Param(key: $0.key, value: $0.value) }, tags: [])
    }
}

/// A step's `with:` options, read with the type each needs; a wrong type names the field.
struct Options {
    let values: [String: JSONValue]
    let directory: String?

    func optionalString(_ key: String) throws -> String? {
        switch values[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .number(let d, let raw)?: return raw ?? String(d)
        case .bool(let b)?: return b ? "true" : "false"
        default: throw StepFailure("with.\(key) must be text")
        }
    }

    func string(_ key: String) throws -> String {
        guard let s = try optionalString(key), !s.isEmpty else { throw StepFailure("with.\(key) is required") }
        return s
    }

    func path(_ key: String) throws -> String {
        let raw = try string(key)
        if raw.hasPrefix("/") { return raw }
        return URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath).appendingPathComponent(raw).standardizedFileURL.path
    }

    func number(_ key: String) throws -> Double? {
        switch values[key] {
        case nil, .null?: return nil
        case .number(let d, _)?: return d
        case .string(let s)?: if let d = Double(s) { return d }
        default: break
        }
        throw StepFailure("with.\(key) must be a number")
    }

    func int(_ key: String) throws -> Int? {
        guard let d = try number(key) else { return nil }
        guard d == d.rounded(), abs(d) < 1e15 else { throw StepFailure("with.\(key) must be an integer") }
        return Int(d)
    }

    func bool(_ key: String) throws -> Bool? {
        switch values[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .string("true")?: return true
        case .string("false")?: return false
        default: throw StepFailure("with.\(key) must be true or false")
        }
    }

    /// A list, or text with commas.
    func optionalList(_ key: String) throws -> [String]? {
        switch values[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .array(let a)?:
            return try a.map {
                guard case .string(let s) = $0 else { throw StepFailure("with.\(key) must be a list of names") }
                return s
            }
        default: throw StepFailure("with.\(key) must be a list of names")
        }
    }

    func list(_ key: String) throws -> [String] { try optionalList(key) ?? [] }

    func numbers(_ key: String) throws -> [Double]? {
        switch values[key] {
        case nil, .null?: return nil
        case .array(let a)?:
            return try a.map {
                guard case .number(let d, _) = $0 else { throw StepFailure("with.\(key) must be a list of numbers") }
                return d
            }
        default: throw StepFailure("with.\(key) must be a list of numbers")
        }
    }

    /// A mapping of names to text.
    func map(_ key: String) throws -> [String: String] {
        switch values[key] {
        case nil, .null?: return [:]
        case .object(let o)?:
            var out: [String: String] = [:]
            for (k, v) in o {
                switch v {
                case .string(let s): out[k] = s
                case .number(let d, let raw): out[k] = raw ?? String(d)
                default: throw StepFailure("with.\(key).\(k) must be text")
                }
            }
            return out
        default: throw StepFailure("with.\(key) must be a mapping")
        }
    }

    /// A YAML document: a file (a path relative to the pipeline's folder) or written inline
    /// (a list is put under `key`).
    func document(_ option: String, key: String) throws -> String {
        switch values[option] {
        case .string(let path)?:
            let full = path.hasPrefix("/") ? path : URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath).appendingPathComponent(path).standardizedFileURL.path
            guard let text = try? String(contentsOfFile: full, encoding: .utf8) else { throw StepFailure("with.\(option): cannot read \(path)") }
            return text
        case .array(let list)?:
            return try Self.json(.object([key: .array(list)]))
        case .object(let o)?:
            return try Self.json(.object(o))
        default:
            throw StepFailure("with.\(option) is required: a file, or the content itself")
        }
    }

    static func json(_ value: JSONValue) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

extension TrackingService {
    /// The tracking run of a step's newest attempt: the step's own once it finished, else found
    /// by its tags (while it runs, the step row does not name it yet).
    public func stepTrackingRun(_ run: PipelineRun, _ step: StepRun) async throws -> String? {
        if let id = step.trackingRunID { return id }
        guard step.state == .running || step.state == .pending,
            let experiment = try? await experiment(named: run.pipeline, workspace: run.workspace) else { return nil }
        let quoted = step.step.replacingOccurrences(of: "'", with: "''")
        let page = try await searchRuns(
            experimentIDs: [experiment.id], filter: "tags.`loom.pipeline.run` = '\(run.id)' and tags.`loom.pipeline.step` = '\(quoted)'",
            viewType: .all, maxResults: 1, orderBy: ["attributes.start_time DESC"], pageToken: nil)
        return page.items.first?.info.runID
    }

    /// A command step's `stdout` or `stderr` (its newest attempt's) from byte `offset` on; empty
    /// when there is nothing (yet).
    public func stepLog(_ run: PipelineRun, _ step: StepRun, stream: String, from offset: Int64) async throws -> [UInt8] {
        guard stream == "stdout" || stream == "stderr" else { throw LoomError.invalidParameter("stream must be stdout or stderr") }
        guard offset >= 0 else { throw LoomError.invalidParameter("offset must not be negative") }
        guard let runID = try await stepTrackingRun(run, step), let root = try runArtifactRoot(try await self.run(id: runID).info) else { return [] }
        let path = try root.appending("logs/\(stream).txt")
        guard let size = try await artifacts.fileSize(path), size > offset else { return [] }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(min(size - offset, 1 << 20)))
        try await artifacts.read(path, from: offset, chunkSize: 1 << 16) { buffer in bytes.append(contentsOf: buffer.readableBytesView) }
        return bytes
    }
}
