import Foundation

/// Classification quality, as scikit-learn's metrics compute it (a class never predicted has
/// precision 0; ROC AUC is one-vs-rest, macro-averaged, over the classes present).
public struct ClassificationMetrics: Codable, Sendable, Hashable {
    public struct PerClass: Codable, Sendable, Hashable {
        public var label: String
        public var precision: Double
        public var recall: Double
        public var f1: Double
        public var support: Int
    }

    public var rows: Int
    public var accuracy: Double
    public var precisionMacro: Double
    public var recallMacro: Double
    public var f1Macro: Double
    public var logLoss: Double
    /// Nil when fewer than two classes occur in the data.
    public var rocAuc: Double?
    public var classes: [PerClass]
    /// `confusion[actual][predicted]`, in class order.
    public var confusion: [[Int]]

    /// `labels`: class index per row; `probabilities`: `rows × classes`.
    public init(labels: [Int32], probabilities: [Double], classNames: [String]) {
        let n = labels.count
        let k = classNames.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var loss = 0.0
        let eps = Double.ulpOfOne
        for i in 0..<n {
            var best = 0
            for c in 1..<k where probabilities[i * k + c] > probabilities[i * k + best] { best = c }
            confusion[Int(labels[i])][best] += 1
            loss -= log(min(max(probabilities[i * k + Int(labels[i])], eps), 1 - eps))
        }
        var perClass: [PerClass] = []
        for c in 0..<k {
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<k).reduce(0) { $0 + confusion[$1][c] })
            let actual = Double(confusion[c].reduce(0, +))
            let precision = predicted > 0 ? tp / predicted : 0
            let recall = actual > 0 ? tp / actual : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            perClass.append(PerClass(label: classNames[c], precision: precision, recall: recall, f1: f1, support: Int(actual)))
        }
        let correct = (0..<k).reduce(0) { $0 + confusion[$1][$1] }
        self.rows = n
        self.accuracy = n > 0 ? Double(correct) / Double(n) : 0
        self.precisionMacro = perClass.reduce(0) { $0 + $1.precision } / Double(max(k, 1))
        self.recallMacro = perClass.reduce(0) { $0 + $1.recall } / Double(max(k, 1))
        self.f1Macro = perClass.reduce(0) { $0 + $1.f1 } / Double(max(k, 1))
        self.logLoss = n > 0 ? loss / Double(n) : 0
        self.classes = perClass
        self.confusion = confusion
        if k == 2 {
            self.rocAuc = Self.auc(scores: (0..<n).map { probabilities[$0 * 2 + 1] }, positive: labels.map { $0 == 1 })
        } else {
            let each = (0..<k).compactMap { c in
                Self.auc(scores: (0..<n).map { probabilities[$0 * k + c] }, positive: labels.map { Int($0) == c })
            }
            self.rocAuc = each.count == k ? each.reduce(0, +) / Double(k) : nil
        }
    }

    /// Area under the ROC curve: the chance that a positive scores above a negative (ties
    /// count half), from average ranks.
    static func auc(scores: [Double], positive: [Bool]) -> Double? {
        let positives = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
        let negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j + 2) / 2
            for t in i...j where positive[order[t]] { rankSum += rank }
            i = j + 1
        }
        let p = Double(positives)
        return (rankSum - p * (p + 1) / 2) / (p * Double(negatives))
    }

    /// Flat name → value pairs for a run, with per-class entries named by the class.
    public func logged(prefix: String) -> [(String, Double)] {
        var out: [(String, Double)] = [
            ("\(prefix)accuracy", accuracy), ("\(prefix)precision_macro", precisionMacro),
            ("\(prefix)recall_macro", recallMacro), ("\(prefix)f1_macro", f1Macro), ("\(prefix)log_loss", logLoss),
        ]
        if let rocAuc { out.append(("\(prefix)roc_auc", rocAuc)) }
        if classes.count <= 50 {
            for c in classes {
                let name = MetricName.clean(c.label)
                out.append(("\(prefix)precision_\(name)", c.precision))
                out.append(("\(prefix)recall_\(name)", c.recall))
                out.append(("\(prefix)f1_\(name)", c.f1))
            }
        }
        return out
    }
}

/// Regression quality.
public struct RegressionMetrics: Codable, Sendable, Hashable {
    public var rows: Int
    public var mae: Double
    public var mse: Double
    public var rmse: Double
    /// 1 − residual / total sum of squares (0 when the target is constant and predicted exactly).
    public var r2: Double

    public init(actual: [Double], predicted: [Double]) {
        let n = actual.count
        let mean = actual.reduce(0, +) / Double(max(n, 1))
        var absolute = 0.0
        var squared = 0.0
        var total = 0.0
        for i in 0..<n {
            let e = actual[i] - predicted[i]
            absolute += abs(e)
            squared += e * e
            total += (actual[i] - mean) * (actual[i] - mean)
        }
        rows = n
        mae = absolute / Double(max(n, 1))
        mse = squared / Double(max(n, 1))
        rmse = mse.squareRoot()
        r2 = total > 0 ? 1 - squared / total : (squared == 0 ? 1 : 0)
    }

    public func logged(prefix: String) -> [(String, Double)] {
        [("\(prefix)mae", mae), ("\(prefix)mse", mse), ("\(prefix)rmse", rmse), ("\(prefix)r2", r2)]
    }
}

/// Metric names made of what MLflow accepts (letters, digits, `_ - . /` and spaces).
enum MetricName {
    static func clean(_ text: String) -> String {
        let cleaned = String(text.unicodeScalars.map { s -> Character in
            let ok = (s.isASCII && (CharacterSet.alphanumerics.contains(s) || "_-./ ".unicodeScalars.contains(s)))
            return ok ? Character(s) : "_"
        })
        return cleaned.isEmpty ? "_" : String(cleaned.prefix(100))
    }
}
