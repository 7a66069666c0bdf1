import ArgumentParser
import Foundation
import LoomCore
import LoomData
import LoomModels
import LoomStore
import LoomTracking

/// `loom train`.
struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a built-in model (linear, logistic, gbdt) on a table and record it as a run.",
        discussion: """
            Reads the data whole, turns numbers into features and text into one-hot categories, \
            fits the model in-process and records a run with its parameters, metrics \
            (training_*, validation_* with --validation), the data as inputs and the artifacts \
            model/loom-model.json, model/MLmodel and evaluation/ (a calibration or residual plot \
            and metrics.json). --register adds the model to the registry as a new version.
            """)

    @Option(help: "Training data: a file or folder, or NAME or NAME@VERSION of a registered dataset.") var data: String
    @Option(help: "The column to predict.") var target: String
    @Option(help: "linear, logistic or gbdt.") var model: String
    @Option(help: "auto, regression or classification (auto: by the model; gbdt: classification for text or at most 10 distinct integers).") var task = "auto"
    @Option(help: "Data to report validation metrics on (and, for gbdt, to stop early on).") var validation: String?
    @Option(parsing: .upToNextOption, help: "Feature columns (default: all but the target and --exclude).") var features: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns not to use as features (an id, say).") var exclude: [String] = []
    @Option(help: "L2 penalty (linear: default 0, Ridge alpha; logistic: default 1, 1/C; gbdt: default 0, on leaf values).") var l2: Double?
    @Option(name: .customLong("max-iter"), help: "Iterations at most (logistic optimiser: 1000; gbdt boosting rounds: 100).") var maxIterations: Int?
    @Option(name: .customLong("learning-rate"), help: "gbdt: shrinkage of each tree.") var learningRate = 0.1
    @Option(name: .customLong("max-leaf-nodes"), help: "gbdt: leaves per tree at most.") var maxLeafNodes = 31
    @Option(name: .customLong("max-depth"), help: "gbdt: depth per tree at most (default: none).") var maxDepth: Int?
    @Option(name: .customLong("min-samples-leaf"), help: "gbdt: rows per leaf at least.") var minSamplesLeaf = 20
    @Option(name: .customLong("max-bins"), help: "gbdt: histogram bins per feature (2-255).") var maxBins = 255
    @Option(name: .customLong("early-stopping"), help: "gbdt: auto (on past 10,000 rows), on or off.") var earlyStopping = "auto"
    @Option(name: .customLong("validation-fraction"), help: "gbdt: share of the training rows held out for early stopping when --validation is not given.") var validationFraction = 0.1
    @Option(help: "gbdt: stop after this many rounds without improvement.") var patience = 10
    @Option(help: "gbdt: seed of binning samples and the held-out rows.") var seed: UInt64 = 0
    @Option(name: .customLong("max-categories"), help: "One-hot columns per text column at most (the most frequent values).") var maxCategories = 100
    @Option(help: "Experiment to record the run in (created if missing; default: Default).") var experiment: String?
    @Option(name: .customLong("run-name"), help: "Name of the run.") var runName: String?
    @Option(help: "Register the model under this name as a new version.") var register: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var storage: DataDirStoreOptions

    func options() throws -> TrainingOptions {
        guard let family = ModelFamily(rawValue: model) else {
            throw LoomError.invalidParameter("--model must be one of \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")), got '\(model)'")
        }
        guard let taskChoice = TrainingOptions.Task(rawValue: task) else {
            throw LoomError.invalidParameter("--task must be auto, regression or classification, got '\(task)'")
        }
        guard let stopping = GBDTParameters.EarlyStopping(rawValue: earlyStopping) else {
            throw LoomError.invalidParameter("--early-stopping must be auto, on or off, got '\(earlyStopping)'")
        }
        var o = TrainingOptions(family: family, target: target)
        o.task = taskChoice
        o.features = features.isEmpty ? nil : features
        o.exclude = exclude
        o.l2 = l2
        o.maxCategories = maxCategories
        if family == .logistic, let maxIterations { o.maxIterations = maxIterations }
        var g = GBDTParameters()
        if family == .gbdt, let maxIterations { g.maxIterations = maxIterations }
        g.learningRate = learningRate
        g.maxLeafNodes = maxLeafNodes
        g.maxDepth = maxDepth
        g.minSamplesLeaf = minSamplesLeaf
        g.maxBins = maxBins
        g.earlyStopping = stopping
        g.validationFraction = validationFraction
        g.patience = patience
        g.seed = seed
        o.gbdt = g
        if family == .gbdt { try g.check() }
        return o
    }

    func run() async throws {
        var request = TrainingRequest(data: try DataSource.parse(data), options: try options())
        request.validation = try validation.map { try DataSource.parse($0) }
        request.experiment = experiment
        request.runName = runName
        request.registerAs = register
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let record: TrainingRecord
        do {
            record = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom train")) {
                try await tracking.trainModel(request)
            }
        } catch {
            await tracking.store.shutdown()
            throw error
        }
        await tracking.store.shutdown()
        let m = record.result.model
        if output.json {
            struct Summary: Encodable {
                var runId: String
                var experimentId: String
                var modelUri: String
                var family: String
                var task: String
                var classes: [String]?
                var features: Int
                var rows: Int
                var seconds: Double
                var fitSeconds: Double
                var iterations: Int?
                var stoppedEarly: Bool
                var training: Evaluation
                var validation: Evaluation?
                var registeredModel: String?
                var registeredVersion: String?
            }
            return try Output.json(Summary(
                runId: record.runID, experimentId: record.experimentID, modelUri: "runs:/\(record.runID)/model", family: m.family.rawValue,
                task: m.task.rawValue, classes: m.classes, features: m.features.count, rows: m.training.rows, seconds: record.seconds, fitSeconds: record.fitSeconds,
                iterations: record.result.iterations, stoppedEarly: record.result.stoppedEarly, training: record.result.training,
                validation: record.result.validation, registeredModel: record.modelVersion?.name, registeredVersion: record.modelVersion?.version))
        }
        print("trained \(m.family.rawValue) (\(m.task.rawValue)) on \(m.training.rows) rows, \(m.features.count) features in \(String(format: "%.2f", record.fitSeconds)) s (\(String(format: "%.2f", record.seconds)) s with reading)")
        if let iterations = record.result.iterations {
            print("iterations: \(iterations)\(record.result.stoppedEarly ? " (stopped early)" : "")")
        }
        if !m.training.skippedColumns.isEmpty { print("skipped (no values): \(m.training.skippedColumns.joined(separator: ", "))") }
        print("run:   \(record.runID)\nmodel: runs:/\(record.runID)/model")
        if let v = record.modelVersion { print("registered: \(v.name) version \(v.version)") }
        PredictCommand.printEvaluation("training", record.result.training)
        if let v = record.result.validation { PredictCommand.printEvaluation("validation", v) }
    }
}

/// `loom predict`.
struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Run a built-in model over a table (batch inference) and write its predictions as CSV.",
        discussion: """
            The model is a loom-model.json file or a folder holding one, runs:/RUN_ID/model, \
            models:/NAME/VERSION or models:/NAME@ALIAS. The output has a column `prediction` and, \
            for classifiers, `probability_<class>` per class. When the data holds the model's \
            target column, its metrics are printed too.
            """)

    @Option(name: .customLong("model"), help: "The model (a path, runs:/..., models:/...).") var modelReference: String
    @Option(help: "Data: a file or folder, or NAME or NAME@VERSION of a registered dataset.") var data: String
    @Option(name: .shortAndLong, help: "Where to write the predictions (CSV; default: standard output).") var output: String?
    @Option(parsing: .upToNextOption, help: "Columns of the data to copy into the output first (an id, say).") var keep: [String] = []
    @Flag(help: "Print the summary as JSON.") var json = false
    @OptionGroup var storage: DataDirStoreOptions

    func run() async throws {
        let source = try DataSource.parse(data)
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let model: LoomModel
        let files: [TableFile]
        do {
            model = try await tracking.loadModel(modelReference)
            files = try await tracking.files(of: source).files
        } catch {
            await tracking.store.shutdown()
            throw error
        }
        await tracking.store.shutdown()
        let categorical = Set(model.inputs.filter { $0.kind == .category }.map(\.name) + keep)
        let keep = self.keep
        let started = Date()
        let (frame, prediction, predictSeconds) = try await DataWork.run { () throws -> (Frame, Prediction, Double) in
            let (frame, _) = try Frame.read(files, categorical: categorical)
            for k in keep where frame.index(of: k) == nil { throw LoomError.invalidParameter("the data has no column \(k) to keep") }
            let start = Date()
            let prediction = try model.predict(frame)
            return (frame, prediction, Date().timeIntervalSince(start))
        }
        let seconds = Date().timeIntervalSince(started)
        // Data that holds the target is scored too; when it cannot be (a class the model does
        // not know, say), the summary says why instead of leaving the metrics out silently.
        let (evaluation, noEvaluation) = Self.evaluation(model, frame)
        let destination = output ?? "-"
        try Self.write(prediction, frame: frame, keep: keep, to: output)
        let summary = output == nil ? { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) } : { (s: String) in print(s) }
        if json, output != nil {
            struct Summary: Encodable {
                var rows: Int
                var seconds: Double
                var predictSeconds: Double
                var rowsPerSecond: Double
                var output: String
                var evaluation: Evaluation?
            }
            return try Output.json(Summary(
                rows: prediction.count, seconds: seconds, predictSeconds: predictSeconds,
                rowsPerSecond: Double(prediction.count) / max(predictSeconds, 1e-9), output: destination, evaluation: evaluation))
        }
        summary("predicted \(prediction.count) rows in \(String(format: "%.3f", predictSeconds)) s (\(String(format: "%.3f", seconds)) s with reading)" + (output.map { " -> \($0)" } ?? ""))
        if let evaluation { Self.printEvaluation("evaluation", evaluation, to: summary) }
        if let noEvaluation { summary("no evaluation: \(noEvaluation)") }
    }

    /// The metrics on data that holds the target column, or why there are none.
    static func evaluation(_ model: LoomModel, _ frame: Frame) -> (Evaluation?, String?) {
        guard frame.index(of: model.target) != nil else { return (nil, nil) }
        switch Result(catching: { () throws(LoomError) in try Trainer.evaluate(model, on: frame) }) {
        case .success(let e): return (e, nil)
        case .failure(let error): return (nil, error.message)
        }
    }

    /// Writes the predictions to `path`, or to standard output when nil.
    static func write(_ p: Prediction, frame: Frame, keep: [String], to path: String?) throws {
        var columns = keep
        columns.append("prediction")
        if p.task.isClassification { columns += p.classes.map { "probability_\($0)" } }
        let writer = try path.map { try CSVWriter(path: $0, columns: columns) } ?? CSVWriter(handle: .standardOutput, columns: columns)
        let kept = keep.map { frame.columns[frame.index(of: $0)!] }
        let k = p.classes.count
        for i in 0..<p.count {
            var fields: [ArraySlice<UInt8>?] = []
            for column in kept {
                switch column {
                case .numbers(let v): fields.append(v[i].isNaN ? nil : ArraySlice(Frame.text(of: v[i]).utf8))
                case .categories(let codes, let levels): fields.append(codes[i] < 0 ? nil : ArraySlice(levels[Int(codes[i])].utf8))
                }
            }
            if p.task == .regression {
                fields.append(ArraySlice("\(p.values[i])".utf8))
            } else {
                fields.append(ArraySlice(p.classes[Int(p.labels[i])].utf8))
                for c in 0..<k { fields.append(ArraySlice("\(p.probabilities[i * k + c])".utf8)) }
            }
            try writer.write(fields)
        }
        try writer.close()
    }

    static func printEvaluation(_ title: String, _ e: Evaluation, to out: (String) -> Void = { print($0) }) {
        func f(_ v: Double) -> String { String(format: "%.4f", v) }
        switch e {
        case .regression(let m):
            out("\(title): rows \(m.rows)  mae \(f(m.mae))  rmse \(f(m.rmse))  r2 \(f(m.r2))")
        case .classification(let m):
            out("\(title): rows \(m.rows)  accuracy \(f(m.accuracy))  f1_macro \(f(m.f1Macro))  log_loss \(f(m.logLoss))" + (m.rocAuc.map { "  roc_auc \(f($0))" } ?? ""))
        }
    }
}
