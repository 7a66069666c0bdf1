import Foundation
import LoomCore
import LoomData

/// How to train.
public struct TrainingOptions: Sendable {
    public enum Task: String, Sendable, CaseIterable {
        /// Linear: regression; logistic: classification; gbdt: classification when the target
        /// holds text or at most 10 distinct integers, regression otherwise.
        case auto
        case regression
        case classification
    }

    public var family: ModelFamily
    public var target: String
    public var task = Task.auto
    /// The feature columns (default: every column but the target and `exclude`).
    public var features: [String]?
    public var exclude: [String] = []
    /// L2 penalty: linear `Σ(y−ŷ)² + l2‖w‖²` (default 0), logistic `Σ log-loss + l2/2‖w‖²`
    /// (default 1, scikit-learn's C = 1/l2), trees: on leaf values (default 0).
    public var l2: Double?
    /// Logistic: optimiser iterations at most.
    public var maxIterations = 1000
    public var gbdt = GBDTParameters()
    /// One-hot columns per text column at most (the most frequent values).
    public var maxCategories = 100

    public init(family: ModelFamily, target: String) {
        self.family = family
        self.target = target
    }

    public var effectiveL2: Double { l2 ?? (family == .logistic ? 1 : 0) }

    /// The settings as run parameters.
    public var logged: [(String, String)] {
        var out: [(String, String)] = [("model", family.rawValue), ("target", target), ("l2", "\(effectiveL2)"), ("max_categories", "\(maxCategories)")]
        switch family {
        case .linear: break
        case .logistic: out.append(("max_iterations", "\(maxIterations)"))
        case .gbdt:
            let g = gbdt
            out += [
                ("max_iterations", "\(g.maxIterations)"), ("learning_rate", "\(g.learningRate)"), ("max_leaf_nodes", "\(g.maxLeafNodes)"),
                ("max_depth", g.maxDepth.map(String.init) ?? "none"), ("min_samples_leaf", "\(g.minSamplesLeaf)"),
                ("max_bins", "\(g.maxBins)"), ("early_stopping", g.earlyStopping.rawValue), ("validation_fraction", "\(g.validationFraction)"),
                ("patience", "\(g.patience)"), ("seed", "\(g.seed)"),
            ]
        }
        return out
    }
}

/// Quality of a model on some rows.
public enum Evaluation: Sendable, Codable, Hashable {
    case classification(ClassificationMetrics)
    case regression(RegressionMetrics)

    public func logged(prefix: String) -> [(String, Double)] {
        switch self {
        case .classification(let m): return m.logged(prefix: prefix)
        case .regression(let m): return m.logged(prefix: prefix)
        }
    }

    enum CodingKeys: String, CodingKey { case kind }

    /// The metrics' fields with `"kind": "classification"` or `"regression"` beside them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .classification(let m):
            try c.encode("classification", forKey: .kind)
            try m.encode(to: encoder)
        case .regression(let m):
            try c.encode("regression", forKey: .kind)
            try m.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "classification": self = .classification(try ClassificationMetrics(from: decoder))
        case "regression": self = .regression(try RegressionMetrics(from: decoder))
        case let other: throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown evaluation kind \(other)")
        }
    }
}

public struct TrainingResult: Sendable {
    public var model: LoomModel
    public var training: Evaluation
    public var validation: Evaluation?
    /// Calibration (classifiers) or residual (regression) plot, SVG, of the validation rows
    /// when given, else the training rows.
    public var plot: (name: String, svg: String)
    /// Trees: iterations kept and whether early stopping ended training.
    public var iterations: Int?
    public var stoppedEarly: Bool
    /// Fitting alone: features built, evaluation not counted.
    public var fitSeconds: Double
}

public enum Trainer {
    /// The target as the model sees it: values (regression) or class indices.
    struct Target {
        var task: ModelTask
        var values: [Double]
        var classes: [String]
    }

    public static func train(_ frame: Frame, validation: Frame? = nil, options o: TrainingOptions, dataset: (digest: String?, name: String?) = (nil, nil)) throws(LoomError) -> TrainingResult {
        guard !o.target.isEmpty else { throw LoomError.invalidParameter("name the target column") }
        guard frame.rowCount > 0 else { throw LoomError.invalidParameter("the training data has no rows") }
        if let l2 = o.l2, !(l2 >= 0 && l2.isFinite) { throw LoomError.invalidParameter("l2 must be zero or more") }
        guard o.maxCategories >= 1 else { throw LoomError.invalidParameter("max categories must be at least 1") }
        guard o.maxIterations >= 1 else { throw LoomError.invalidParameter("max iterations must be at least 1") }
        if o.family == .gbdt { try o.gbdt.check() }
        let target = try targetOf(frame, options: o, classes: nil)
        let (inputs, skipped) = try FeatureEncoding.inputs(
            for: frame, target: o.target, only: o.features, exclude: Set(o.exclude), maxCategories: o.maxCategories,
            fillMissing: o.family != .gbdt)
        let x = try FeatureEncoding.matrix(frame, inputs: inputs)
        let validationSet: (x: FeatureMatrix, target: Target)? = try validation.map { v throws(LoomError) in
            (try FeatureEncoding.matrix(v, inputs: inputs), try targetOf(v, options: o, classes: target.classes, task: target.task))
        }
        let outputs = target.task == .multiclass ? target.classes.count : 1
        var linear: LinearParameters?
        var ensemble: TreeEnsemble?
        var iterations: Int?
        var stoppedEarly = false
        let fitStart = Date()
        switch o.family {
        case .linear:
            linear = try RidgeRegression.fit(x, target.values, l2: o.effectiveL2)
        case .logistic:
            linear = try LogisticRegression.fit(
                x, labels: target.values.map { Int32($0) }, classes: target.classes.count, l2: o.effectiveL2, maxIterations: o.maxIterations)
            iterations = linear?.iterations
        case .gbdt:
            var p = o.gbdt
            p.l2 = o.l2 ?? p.l2
            let loss: BoostingLoss = switch target.task {
            case .regression: .squaredError
            case .binary: .binary
            case .multiclass: .multinomial(classes: outputs)
            }
            var trainX = x
            var trainY = target.values
            var watch: (x: FeatureMatrix, targets: [Double])?
            let stop = p.earlyStopping == .on || (p.earlyStopping == .auto && frame.rowCount > 10_000)
            if stop {
                if let validationSet {
                    watch = (validationSet.x, validationSet.target.values)
                } else {
                    let (kept, held) = holdout(target, fraction: p.validationFraction, seed: p.seed)
                    guard !kept.isEmpty, !held.isEmpty else {
                        throw LoomError.invalidParameter("too few rows to hold out \(p.validationFraction) for early stopping; turn it off")
                    }
                    trainX = rows(x, kept)
                    trainY = kept.map { target.values[$0] }
                    watch = (rows(x, held), held.map { target.values[$0] })
                }
            }
            let outcome = try GradientBoosting.fit(trainX, targets: trainY, loss: loss, parameters: p, validation: watch)
            ensemble = outcome.ensemble
            iterations = outcome.iterations
            stoppedEarly = outcome.stoppedEarly
        }
        let fitSeconds = Date().timeIntervalSince(fitStart)
        var parameters = Dictionary(o.logged, uniquingKeysWith: { a, _ in a })
        parameters["task"] = target.task.rawValue
        let model = LoomModel(
            format: LoomModel.formatName, formatVersion: LoomModel.currentVersion, family: o.family, task: target.task,
            target: o.target, classes: target.task.isClassification ? target.classes : nil, inputs: inputs,
            features: inputs.flatMap(\.featureNames), linear: linear, ensemble: ensemble, parameters: parameters,
            training: .init(rows: frame.rowCount, datasetDigest: dataset.digest, dataset: dataset.name,
                            created: ISO8601DateFormatter().string(from: Date()), skippedColumns: skipped))
        let trainingEvaluation = evaluate(model.predict(x), target)
        let validationEvaluation = validationSet.map { evaluate(model.predict($0.x), $0.target) }
        let shown = validationSet.map { (model.predict($0.x), $0.target) } ?? (model.predict(x), target)
        let which = validationSet == nil ? "training" : "validation"
        let plot: (String, String) = target.task.isClassification
            ? ("calibration.svg", Plots.calibration(labels: shown.1.values.map { Int32($0) }, probabilities: shown.0.probabilities, classes: target.classes.count, title: "Calibration (\(which) data)"))
            : ("residuals.svg", Plots.residuals(actual: shown.1.values, predicted: shown.0.values, title: "Residuals (\(which) data)"))
        return TrainingResult(model: model, training: trainingEvaluation, validation: validationEvaluation, plot: plot, iterations: iterations, stoppedEarly: stoppedEarly, fitSeconds: fitSeconds)
    }

    /// Scores a model on data that holds its target column.
    public static func evaluate(_ model: LoomModel, on frame: Frame) throws(LoomError) -> Evaluation {
        var o = TrainingOptions(family: model.family, target: model.target)
        o.task = model.task == .regression ? .regression : .classification
        let target = try targetOf(frame, options: o, classes: model.classes, task: model.task)
        return evaluate(try model.predict(frame), target)
    }

    static func evaluate(_ p: Prediction, _ t: Target) -> Evaluation {
        if t.task == .regression { return .regression(RegressionMetrics(actual: t.values, predicted: p.values)) }
        return .classification(ClassificationMetrics(labels: t.values.map { Int32($0) }, probabilities: p.probabilities, classNames: t.classes))
    }

    static func rows(_ x: FeatureMatrix, _ rows: [Int]) -> FeatureMatrix {
        var values = [Double]()
        values.reserveCapacity(rows.count * x.width)
        x.values.withUnsafeBufferPointer { v in
            for r in rows { values.append(contentsOf: v[(r * x.width)..<((r + 1) * x.width)]) }
        }
        return FeatureMatrix(count: rows.count, width: x.width, values: values)
    }

    /// Rows kept for training and rows held out (a seeded shuffle; per class for classifiers).
    static func holdout(_ t: Target, fraction: Double, seed: UInt64) -> (kept: [Int], held: [Int]) {
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        var groups: [[Int]] = t.task.isClassification
            ? Array(repeating: [], count: t.classes.count) : [[]]
        for i in t.values.indices { groups[t.task.isClassification ? Int(t.values[i]) : 0].append(i) }
        var kept: [Int] = []
        var held: [Int] = []
        for var g in groups {
            g.shuffle(using: &rng)
            let h = Int((Double(g.count) * fraction).rounded(.up))
            held += g[0..<min(h, g.count)]
            kept += g[min(h, g.count)...]
        }
        return (kept.sorted(), held.sorted())
    }

    /// Reads the target column: class indices in `classes` order (given, or sorted: numbers by
    /// value, text by text) or regression values. Missing targets, a constant target and text
    /// for regression are errors.
    static func targetOf(_ frame: Frame, options o: TrainingOptions, classes given: [String]?, task fixed: ModelTask? = nil) throws(LoomError) -> Target {
        guard let c = frame.index(of: o.target) else {
            throw LoomError.invalidParameter("the data has no target column \(o.target) (columns: \(frame.names.prefix(20).joined(separator: ", ")))")
        }
        let column = frame.columns[c]
        var missing = 0
        switch column {
        case .numbers(let v): missing = v.reduce(0) { $0 + ($1.isNaN ? 1 : 0) }
        case .categories(let codes, _): missing = codes.reduce(0) { $0 + ($1 < 0 ? 1 : 0) }
        }
        if missing > 0 {
            throw LoomError.invalidParameter("the target \(o.target) is missing in \(missing) of \(frame.rowCount) rows; drop them first (loom datasets clean --drop-missing \(o.target))")
        }
        let classification: Bool
        if let fixed {
            classification = fixed.isClassification
        } else {
            switch (o.task, o.family) {
            case (.regression, .logistic): throw LoomError.invalidParameter("logistic regression classifies; use --model linear or gbdt for regression")
            case (.classification, .linear): throw LoomError.invalidParameter("linear regression predicts numbers; use --model logistic or gbdt to classify")
            case (.regression, _): classification = false
            case (.classification, _): classification = true
            case (.auto, .linear): classification = false
            case (.auto, .logistic): classification = true
            case (.auto, .gbdt):
                if case .numbers(let v) = column {
                    classification = v.allSatisfy { $0 == $0.rounded() } && Set(v).count <= 10
                } else {
                    classification = true
                }
            }
        }
        if !classification {
            guard case .numbers(let v) = column else {
                throw LoomError.invalidParameter("the target \(o.target) holds text; regression needs numbers (classify with --task classification)")
            }
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw LoomError.invalidParameter("the target \(o.target) is infinite in row \(bad + 1)")
            }
            if fixed == nil, let first = v.first, v.allSatisfy({ $0 == first }) {
                throw LoomError.invalidParameter("the target \(o.target) is constant (\(Frame.text(of: first))): there is nothing to learn")
            }
            return Target(task: .regression, values: v, classes: [])
        }
        // Text per row, then classes.
        var texts: [String] = []
        var order: [String]
        switch column {
        case .numbers(let v):
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw LoomError.invalidParameter("the target \(o.target) is infinite in row \(bad + 1)")
            }
            texts = v.map { Frame.text(of: $0) }
            order = Set(v).sorted().map { Frame.text(of: $0) }
        case .categories(let codes, let levels):
            texts = codes.map { levels[Int($0)] }
            order = Set(texts).sorted()
        }
        if let given {
            let position = Dictionary(uniqueKeysWithValues: given.enumerated().map { ($1, $0) })
            var values = [Double](repeating: 0, count: texts.count)
            for (i, t) in texts.enumerated() {
                guard let k = position[t] else {
                    throw LoomError.invalidParameter("the target \(o.target) has the class '\(t)' (row \(i + 1)), which the model does not know")
                }
                values[i] = Double(k)
            }
            return Target(task: given.count == 2 ? .binary : .multiclass, values: values, classes: given)
        }
        guard order.count >= 2 else {
            throw LoomError.invalidParameter("the target \(o.target) has one class (\(order.first ?? "")): there is nothing to learn")
        }
        guard order.count <= 1000 else {
            throw LoomError.invalidParameter("the target \(o.target) has \(order.count) classes; at most 1,000 (is it a regression target? use --task regression)")
        }
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        return Target(task: order.count == 2 ? .binary : .multiclass, values: texts.map { Double(position[$0]!) }, classes: order)
    }
}
