import Foundation
import LoomCore
import LoomData

public enum ModelFamily: String, Codable, Sendable, CaseIterable {
    /// Least squares with an L2 penalty (regression).
    case linear
    /// Logistic regression with an L2 penalty (binary or multinomial classification).
    case logistic
    /// Gradient-boosted decision trees (regression, binary or multiclass).
    case gbdt
}

public enum ModelTask: String, Codable, Sendable {
    case regression
    case binary
    case multiclass

    public var isClassification: Bool { self != .regression }
}

/// A trained model in Loom's format (`loom-model.json`, format version 1): what it reads, how
/// columns become features, and the fitted parameters. Documented in docs/models.md.
public struct LoomModel: Codable, Sendable {
    public static let formatName = "loom-model"
    public static let currentVersion = 1
    public static let fileName = "loom-model.json"

    public struct Training: Codable, Sendable, Hashable {
        public var rows: Int
        /// Content digest of the training data.
        public var datasetDigest: String?
        /// `name@version` when the data is a registered dataset version.
        public var dataset: String?
        public var created: String
        /// Columns left out because they hold no values.
        public var skippedColumns: [String]
    }

    public var format: String
    public var formatVersion: Int
    public var family: ModelFamily
    public var task: ModelTask
    public var target: String
    /// Class labels in score order (classification); for binary models the second is the
    /// positive class.
    public var classes: [String]?
    public var inputs: [ModelInput]
    /// Names of the features the inputs become, in order.
    public var features: [String]
    public var linear: LinearParameters?
    public var ensemble: TreeEnsemble?
    public var parameters: [String: String]
    public var training: Training
    /// The fitted transform the training data went through (its filter steps left out): applied
    /// to the data before `inputs` are read, so that the model takes raw rows.
    public var preprocessing: TransformPlan?
    /// The columns of the data the preprocessing was fitted on (the raw input), with their
    /// MLflow types (`long`, `double`, `boolean`, `string`), when known.
    public var rawInputs: [RawInput]?

    public struct RawInput: Codable, Sendable, Hashable {
        public var name: String
        public var type: String

        public init(name: String, type: String) {
            self.name = name
            self.type = type
        }
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(self)
    }

    /// Reads a model file, refusing other formats and newer versions.
    public static func decode(_ data: Data) throws(LoomError) -> LoomModel {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        struct Header: Decodable {
            var format: String?
            var formatVersion: Int?
        }
        guard let header = try? decoder.decode(Header.self, from: data), header.format == formatName else {
            throw LoomError.invalidParameter("not a Loom model file (expected JSON with \"format\": \"\(formatName)\")")
        }
        guard let version = header.formatVersion, version <= currentVersion else {
            throw LoomError.invalidParameter("the model file has format version \(header.formatVersion.map(String.init) ?? "?"); this Loom reads up to \(currentVersion)")
        }
        let model: LoomModel
        do {
            model = try decoder.decode(LoomModel.self, from: data)
        } catch {
            throw LoomError.invalidParameter("the model file is damaged: \(error)")
        }
        try model.check()
        return model
    }

    /// Checks that the parts agree (feature counts, classes, trees), so that a damaged file is
    /// refused on load rather than failing while predicting.
    func check() throws(LoomError) {
        func bad(_ m: String) -> LoomError { .invalidParameter("the model file is inconsistent: \(m)") }
        if let preprocessing {
            try preprocessing.check()
            guard preprocessing.isFitted, !preprocessing.steps.contains(where: { $0.kind == .filter }) else {
                throw bad("the preprocessing must be a fitted transform without filters")
            }
        }
        let width = inputs.reduce(0) { $0 + $1.width }
        guard width == features.count else { throw bad("\(features.count) features named, inputs make \(width)") }
        let outputs = task == .multiclass ? (classes?.count ?? 0) : 1
        if task.isClassification, (classes?.count ?? 0) < 2 { throw bad("a classifier needs at least two classes") }
        if task == .binary, classes?.count != 2 { throw bad("a binary model needs two classes") }
        switch family {
        case .linear, .logistic:
            guard let linear else { throw bad("no coefficients") }
            guard linear.intercepts.count == outputs, linear.coefficients.count == outputs,
                linear.coefficients.allSatisfy({ $0.count == width }) else { throw bad("coefficients do not match the features") }
        case .gbdt:
            guard let ensemble else { throw bad("no trees") }
            guard ensemble.baseline.count == outputs, ensemble.trees.allSatisfy({ $0.count == outputs }) else { throw bad("trees do not match the outputs") }
            for iteration in ensemble.trees {
                for tree in iteration {
                    let n = tree.feature.count
                    guard n > 0, [tree.threshold.count, tree.missingLeft.count, tree.left.count, tree.right.count, tree.value.count].allSatisfy({ $0 == n }) else {
                        throw bad("a tree's arrays differ in length")
                    }
                    for i in 0..<n where tree.feature[i] >= 0 {
                        // Children come after their parent, so walking a tree always ends.
                        guard Int(tree.feature[i]) < width, tree.left[i] > i, tree.right[i] > i, Int(tree.left[i]) < n, Int(tree.right[i]) < n else {
                            throw bad("a tree node points outside the tree")
                        }
                    }
                }
            }
        }
    }

    /// The input signature in MLflow's column-schema form.
    public var signatureInputs: [[String: String]] {
        if let rawInputs, preprocessing != nil { return rawInputs.map { ["name": $0.name, "type": $0.type] } }
        return inputs.map { ["name": $0.name, "type": $0.kind == .number ? "double" : "string"] }
    }
}

/// What a model says about each row.
public struct Prediction: Sendable {
    public var task: ModelTask
    /// Regression: the predicted value per row.
    public var values: [Double]
    /// Classification: the predicted class per row (index into `classes`).
    public var labels: [Int32]
    /// Classification: `rows × classes` probabilities.
    public var probabilities: [Double]
    public var classes: [String]
    public var count: Int { task == .regression ? values.count : labels.count }
}

extension LoomModel {
    /// Batch inference over a frame (columns matched by name; extra columns ignored).
    public func predict(_ frame: Frame) throws(LoomError) -> Prediction {
        if let preprocessing {
            var model = self
            model.preprocessing = nil
            return try model.predict(try frame.transformed(by: try TransformApplier(preprocessing, columns: frame.names, skipFilters: true)))
        }
        switch family {
        case .linear, .logistic:
            let sources = try FeatureEncoding.sources(frame, inputs: inputs)
            return predict(scores: linear!.scores(sources, rows: frame.rowCount), rows: frame.rowCount)
        case .gbdt:
            return predict(try FeatureEncoding.matrix(frame, inputs: inputs))
        }
    }

    public func predict(_ x: FeatureMatrix) -> Prediction {
        let scores: [Double]
        switch family {
        case .linear, .logistic: scores = linear!.scores(x)
        case .gbdt: scores = ensemble!.scores(x)
        }
        return predict(scores: scores, rows: x.count)
    }

    /// Turns raw scores into the task's predictions.
    func predict(scores: [Double], rows n: Int) -> Prediction {
        switch task {
        case .regression:
            return Prediction(task: task, values: scores, labels: [], probabilities: [], classes: [])
        case .binary:
            var probabilities = [Double](repeating: 0, count: 2 * n)
            var labels = [Int32](repeating: 0, count: n)
            for i in 0..<n {
                let p = 1 / (1 + exp(-scores[i]))
                probabilities[2 * i] = 1 - p
                probabilities[2 * i + 1] = p
                labels[i] = p > 0.5 ? 1 : 0
            }
            return Prediction(task: task, values: [], labels: labels, probabilities: probabilities, classes: classes ?? [])
        case .multiclass:
            let k = classes?.count ?? 0
            var probabilities = scores
            var labels = [Int32](repeating: 0, count: n)
            for i in 0..<n {
                var top = -Double.infinity
                var best = 0
                for c in 0..<k where scores[i * k + c] > top {
                    top = scores[i * k + c]
                    best = c
                }
                var total = 0.0
                for c in 0..<k {
                    probabilities[i * k + c] = exp(scores[i * k + c] - top)
                    total += probabilities[i * k + c]
                }
                for c in 0..<k { probabilities[i * k + c] /= total }
                labels[i] = Int32(best)
            }
            return Prediction(task: task, values: [], labels: labels, probabilities: probabilities, classes: classes ?? [])
        }
    }
}
