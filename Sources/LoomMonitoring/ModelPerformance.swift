import Foundation
import LoomCore

/// Azure ML's model performance signal: an endpoint's predictions joined with the ground truth
/// posted later by correlation id (docs/deployment.md, "labels"), scored like scikit-learn's
/// metrics. Classification: accuracy, precision, recall and F1 (of the positive class for two
/// classes, macro-averaged for more), and ROC AUC when the answers carry scores. Regression:
/// MAE, MSE, RMSE.
public enum ModelPerformance {
    /// The metrics `compute` gives (classification: the first five; regression: the rest).
    public static let metricNames = ["accuracy", "precision", "recall", "f1", "auc", "mae", "mse", "rmse"]

    public enum Task: String, Sendable, Codable {
        case classification, regression
    }

    public struct Result: Sendable, Codable, Equatable {
        public var task: Task
        /// Rows with both a prediction and a label.
        public var rows: Int
        /// Predictions without a label yet.
        public var unlabeled: Int
        public var metrics: [String: Double]
    }

    /// One scored row: its request's correlation id, its position among that request's rows,
    /// and the answer for it.
    public struct Prediction: Sendable {
        public var correlationID: String
        public var row: Int
        public var value: JSONValue

        public init(correlationID: String, row: Int, value: JSONValue) {
            self.correlationID = correlationID
            self.row = row
            self.value = value
        }
    }

    /// Joins and scores. A label is a value (for a one-row request) or an array (one per row).
    /// Nil when no row has a label.
    public static func compute(_ predictions: [Prediction], labels: [String: JSONValue], task: Task? = nil) -> Result? {
        var pairs: [(prediction: JSONValue, label: JSONValue)] = []
        var unlabeled = 0
        for p in predictions {
            guard let label = labels[p.correlationID] else {
                unlabeled += 1
                continue
            }
            switch label {
            case .array(let each):
                guard p.row < each.count, each[p.row] != .null else {
                    unlabeled += 1
                    continue
                }
                pairs.append((p.value, each[p.row]))
            case .null:
                unlabeled += 1
            default:
                guard p.row == 0 else {
                    unlabeled += 1
                    continue
                }
                pairs.append((p.value, label))
            }
        }
        guard !pairs.isEmpty else { return nil }
        let kind = task ?? guessTask(pairs.map(\.label))
        let metrics = kind == .regression ? regression(pairs) : classification(pairs)
        return Result(task: kind, rows: pairs.count, unlabeled: unlabeled, metrics: metrics)
    }

    /// Regression when every label is a number and they are not few whole numbers (more than
    /// 10 distinct values, or any with a fraction).
    static func guessTask(_ labels: [JSONValue]) -> Task {
        var values = Set<Double>()
        for l in labels {
            guard case .number(let v, _) = l else { return .classification }
            if v != v.rounded() { return .regression }
            values.insert(v)
        }
        return values.count > 10 ? .regression : .classification
    }

    static func regression(_ pairs: [(prediction: JSONValue, label: JSONValue)]) -> [String: Double] {
        var absolute = 0.0, squared = 0.0, n = 0
        for (p, l) in pairs {
            guard let y = number(l), let f = number(scoreValue(p) ?? p) else { continue }
            absolute += abs(f - y)
            squared += (f - y) * (f - y)
            n += 1
        }
        guard n > 0 else { return [:] }
        let mse = squared / Double(n)
        return ["mae": absolute / Double(n), "mse": mse, "rmse": mse.squareRoot()]
    }

    static func classification(_ pairs: [(prediction: JSONValue, label: JSONValue)]) -> [String: Double] {
        let labels = pairs.map { key($0.label) }
        var classes = Set(labels)
        let binaryLabels = classes.count <= 2
        // Scores: probabilities of the positive class (a number in [0, 1] against 0/1 labels, or
        // an answer's "score"/"probability").
        let positive = positiveClass(classes)
        var predicted: [String] = []
        var scores: [Double] = []
        for (p, _) in pairs {
            if let s = scoreNumber(p) {
                scores.append(s)
                predicted.append(explicitClass(p) ?? (s >= 0.5 ? positive : other(classes, positive)))
            } else if case .number(let v, _) = p, v != v.rounded(), v >= 0, v <= 1, binaryLabels {
                scores.append(v)
                predicted.append(v >= 0.5 ? positive : other(classes, positive))
            } else {
                predicted.append(explicitClass(p) ?? key(p))
            }
        }
        classes.formUnion(predicted)
        let n = Double(pairs.count)
        var metrics: [String: Double] = ["accuracy": Double(zip(predicted, labels).filter { $0 == $1 }.count) / n]
        func prf(_ c: String) -> (Double, Double, Double) {
            let tp = Double(zip(predicted, labels).filter { $0 == c && $1 == c }.count)
            let fp = Double(zip(predicted, labels).filter { $0 == c && $1 != c }.count)
            let fn = Double(zip(predicted, labels).filter { $0 != c && $1 == c }.count)
            let precision = tp + fp > 0 ? tp / (tp + fp) : 0
            let recall = tp + fn > 0 ? tp / (tp + fn) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return (precision, recall, f1)
        }
        if classes.count <= 2 {
            (metrics["precision"], metrics["recall"], metrics["f1"]) = prf(positive)
            if scores.count == pairs.count, Set(labels).count == 2 {
                metrics["auc"] = rocAUC(scores: scores, positives: labels.map { $0 == positive })
            }
        } else {
            // Macro average over the classes of the labels and the predictions.
            let all = classes.sorted().map(prf)
            metrics["precision"] = all.map(\.0).reduce(0, +) / Double(all.count)
            metrics["recall"] = all.map(\.1).reduce(0, +) / Double(all.count)
            metrics["f1"] = all.map(\.2).reduce(0, +) / Double(all.count)
        }
        return metrics
    }

    /// ROC AUC as the Mann-Whitney statistic with average ranks for ties (scikit-learn's value).
    static func rocAUC(scores: [Double], positives: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var ranks = [Double](repeating: 0, count: scores.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        let p = Double(positives.filter { $0 }.count), q = Double(positives.count) - p
        let sum = zip(ranks, positives).filter(\.1).map(\.0).reduce(0, +)
        return (sum - p * (p + 1) / 2) / (p * q)
    }

    /// The class a value stands for: numbers without a fraction as integers ("1", not "1.0").
    static func key(_ v: JSONValue) -> String {
        switch v {
        case .number(let x, _): return x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        default: return v.compactText
        }
    }

    /// The positive class of two: 1, true or yes when present, else the last in order.
    static func positiveClass(_ classes: Set<String>) -> String {
        for c in ["1", "true", "True", "yes"] where classes.contains(c) { return c }
        return classes.sorted().last ?? "1"
    }

    static func other(_ classes: Set<String>, _ positive: String) -> String {
        classes.filter { $0 != positive }.sorted().first ?? (positive == "1" ? "0" : "not \(positive)")
    }

    /// An answer's own score: `score` or `probability` of an object answer.
    static func scoreValue(_ v: JSONValue) -> JSONValue? {
        guard case .object(let fields) = v else { return nil }
        return fields["score"] ?? fields["probability"]
    }

    static func scoreNumber(_ v: JSONValue) -> Double? {
        scoreValue(v).flatMap(number)
    }

    /// An answer's own class: `label` or `class` of an object answer.
    static func explicitClass(_ v: JSONValue) -> String? {
        guard case .object(let fields) = v, let c = fields["label"] ?? fields["class"] else { return nil }
        return key(c)
    }

    static func number(_ v: JSONValue) -> Double? {
        switch v {
        case .number(let x, _): return x
        case .string(let s): return Double(s)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
}

/// Ground truth posted for an endpoint (`labels/` under its collection folder): the label of
/// each correlation id (the latest posted wins).
public enum CollectedLabels {
    public static func read(folder: String) throws -> [String: JSONValue] {
        var labels: [String: JSONValue] = [:]
        guard let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: nil) else { return [:] }
        var files: [String] = []
        while let url = walker.nextObject() as? URL {
            if url.path.contains("/labels/"), url.path.hasSuffix(".jsonl") { files.append(url.path) }
        }
        for file in files.sorted() {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            data.withUnsafeBytes { raw in
                var start = 0
                while start < raw.count {
                    var end = start
                    while end < raw.count, raw[end] != 0x0A { end += 1 }
                    if end > start, let value = try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: raw[start..<end])),
                        case .object(let line) = value, case .string(let id)? = line["correlation_id"], let label = line["label"] {
                        labels[id] = label
                    }
                    start = end + 1
                }
            }
        }
        return labels
    }
}
