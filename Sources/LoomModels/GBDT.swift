import Foundation
import LoomCore
import LoomData

/// Settings of gradient-boosted trees; the defaults are scikit-learn's `HistGradientBoosting*`.
public struct GBDTParameters: Codable, Sendable, Hashable {
    public enum EarlyStopping: String, Codable, Sendable {
        /// On when there are more than 10,000 rows.
        case auto
        case on
        case off
    }

    public var maxIterations = 100
    public var learningRate = 0.1
    public var maxLeafNodes = 31
    public var maxDepth: Int?
    public var minSamplesLeaf = 20
    public var l2 = 0.0
    public var maxBins = 255
    public var earlyStopping = EarlyStopping.auto
    /// The share of the training rows held out to decide when to stop (when no validation data
    /// is given).
    public var validationFraction = 0.1
    /// Stop after this many iterations without the validation loss improving by `tolerance`.
    public var patience = 10
    public var tolerance = 1e-7
    public var seed: UInt64 = 0

    public init() {}

    public func check() throws(LoomError) {
        func bad(_ m: String) -> LoomError { .invalidParameter(m) }
        guard maxIterations >= 1 else { throw bad("max iterations must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate must be positive") }
        guard maxLeafNodes >= 2 else { throw bad("max leaf nodes must be at least 2") }
        if let maxDepth, maxDepth < 1 { throw bad("max depth must be at least 1") }
        guard minSamplesLeaf >= 1 else { throw bad("min samples per leaf must be at least 1") }
        guard l2 >= 0, l2.isFinite else { throw bad("l2 must be zero or more") }
        guard (2...255).contains(maxBins) else { throw bad("max bins must be between 2 and 255") }
        guard validationFraction > 0, validationFraction < 1 else { throw bad("validation fraction must be between 0 and 1") }
        guard patience >= 1 else { throw bad("patience must be at least 1") }
    }
}

/// One regression tree over raw feature values: node `i` is a leaf when `feature[i] < 0`;
/// otherwise rows with `x[feature] <= threshold` go `left`, others `right`, and a missing (NaN)
/// value goes left when `missingLeft`.
public struct Tree: Codable, Sendable, Hashable {
    public var feature: [Int32] = []
    public var threshold: [Double] = []
    public var missingLeft: [Bool] = []
    public var left: [Int32] = []
    public var right: [Int32] = []
    public var value: [Double] = []

}

/// A boosted ensemble: the score of output `k` is `baseline[k]` plus the leaf value of the
/// `k`-th tree of every iteration (leaf values include the learning rate).
public struct TreeEnsemble: Codable, Sendable, Hashable {
    public var baseline: [Double]
    /// Per iteration, one tree per output.
    public var trees: [[Tree]]
    /// Validation loss per iteration when early stopping ran.
    public var validationLoss: [Double]?

    /// One node of the flattened ensemble: a split (`feature >= 0`) or a leaf with `value`.
    struct FlatNode {
        var feature: Int32
        var missingLeft: Bool
        var left: Int32
        var right: Int32
        /// The threshold of a split, the value of a leaf.
        var number: Double
    }

    /// Every tree's nodes in one array (children renumbered), with each tree's root and output.
    func flattened() -> (nodes: [FlatNode], roots: [(root: Int, output: Int)]) {
        var nodes: [FlatNode] = []
        var roots: [(Int, Int)] = []
        for iteration in trees {
            for (c, tree) in iteration.enumerated() {
                let base = nodes.count
                roots.append((base, c))
                for i in 0..<tree.feature.count {
                    let leaf = tree.feature[i] < 0
                    nodes.append(FlatNode(
                        feature: tree.feature[i], missingLeft: tree.missingLeft[i],
                        left: leaf ? -1 : Int32(base) + tree.left[i], right: leaf ? -1 : Int32(base) + tree.right[i],
                        number: leaf ? tree.value[i] : tree.threshold[i]))
                }
            }
        }
        return (nodes, roots)
    }

    func scores(_ x: FeatureMatrix) -> [Double] {
        let k = baseline.count
        var out = [Double](repeating: 0, count: x.count * k)
        let d = x.width
        let (nodes, roots) = flattened()
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            x.values.withUnsafeBufferPointer { v in
                nodes.withUnsafeBufferPointer { tree in
                    let t = tree.baseAddress!
                    Parallel.ranges(x.count, minimum: 2048) { range, _ in
                        for i in range { for c in 0..<k { base[i * k + c] = baseline[c] } }
                        // Blocks of rows through every tree: a tree's nodes stay in cache.
                        var blockStart = range.lowerBound
                        while blockStart < range.upperBound {
                            let blockEnd = min(blockStart + 256, range.upperBound)
                            for (root, c) in roots {
                                for i in blockStart..<blockEnd {
                                    let row = v.baseAddress! + i * d
                                    var node = t + root
                                    while node.pointee.feature >= 0 {
                                        let value = row[Int(node.pointee.feature)]
                                        let goLeft = value.isNaN ? node.pointee.missingLeft : value <= node.pointee.number
                                        node = t + Int(goLeft ? node.pointee.left : node.pointee.right)
                                    }
                                    base[i * k + c] += node.pointee.number
                                }
                            }
                            blockStart = blockEnd
                        }
                    }
                }
            }
        }
        return out
    }
}

/// What the trees are fitted to.
public enum BoostingLoss: Sendable {
    case squaredError
    case binary
    case multinomial(classes: Int)

    var outputs: Int {
        if case .multinomial(let k) = self { return k }
        return 1
    }
}

/// Quantile bins of each feature (as `HistGradientBoosting*` makes them): at most `maxBins`
/// bins of values plus one bin (255) for missing values.
struct Binner {
    static let missingBin: UInt8 = 255
    /// Per feature, ascending: a value goes into the first bin whose threshold is >= it.
    var thresholds: [[Double]]

    init(_ x: FeatureMatrix, maxBins: Int, seed: UInt64) {
        let n = x.count
        // Thresholds from at most 200,000 rows, picked by a seeded generator.
        var rows = Array(0..<n)
        if n > 200_000 {
            var rng = SplitMix64(seed: seed)
            for i in 0..<200_000 {
                let j = i + Int(rng.next() % UInt64(n - i))
                rows.swapAt(i, j)
            }
            rows = Array(rows[0..<200_000])
        }
        var thresholds = [[Double]](repeating: [], count: x.width)
        thresholds.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            Parallel.each(x.width) { j in
                var values = rows.compactMap { r -> Double? in
                    let v = x.values[r * x.width + j]
                    return v.isNaN ? nil : v
                }
                values.sort()
                var distinct: [Double] = []
                for v in values where distinct.last != v { distinct.append(v) }
                var t: [Double] = []
                if distinct.count <= maxBins {
                    for i in 0..<max(0, distinct.count - 1) { t.append((distinct[i] + distinct[i + 1]) / 2) }
                } else {
                    // Percentiles 100·k/maxBins, k = 1..<maxBins, midpoint interpolation.
                    let m = values.count
                    for k in 1..<maxBins {
                        let position = Double(k) / Double(maxBins) * Double(m - 1)
                        let lo = Int(position.rounded(.down))
                        let hi = Int(position.rounded(.up))
                        let q = (values[lo] + values[hi]) / 2
                        if t.last != q { t.append(q) }
                    }
                }
                (base + j).pointee = t
            }
        }
        self.thresholds = thresholds
    }

    /// Bins by feature: `bins[j * count + i]`.
    func bin(_ x: FeatureMatrix) -> [UInt8] {
        let n = x.count
        var out = [UInt8](repeating: 0, count: n * x.width)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            x.values.withUnsafeBufferPointer { v in
                Parallel.each(x.width) { j in
                    let t = thresholds[j]
                    t.withUnsafeBufferPointer { t in
                        for i in 0..<n {
                            let value = v[i * x.width + j]
                            if value.isNaN {
                                base[j * n + i] = Binner.missingBin
                                continue
                            }
                            var lo = 0
                            var hi = t.count
                            while lo < hi {
                                let mid = (lo + hi) >> 1
                                if value <= t[mid] { hi = mid } else { lo = mid + 1 }
                            }
                            base[j * n + i] = UInt8(lo)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Trains gradient-boosted trees: histogram splits on binned features, trees grown best-first
/// up to `maxLeafNodes`, histogram subtraction for the larger child, missing values sent down
/// the side that gains most.
public enum GradientBoosting {
    public struct Outcome: Sendable {
        public var ensemble: TreeEnsemble
        public var iterations: Int
        public var stoppedEarly: Bool
    }

    /// `targets`: the value per row (regression) or the class index (classification).
    /// `validation`: rows to watch the loss on for early stopping.
    public static func fit(
        _ x: FeatureMatrix, targets: [Double], loss: BoostingLoss, parameters p: GBDTParameters,
        validation: (x: FeatureMatrix, targets: [Double])?
    ) throws(LoomError) -> Outcome {
        try p.check()
        let n = x.count
        guard n > 0 else { throw LoomError.invalidParameter("no rows to train on") }
        let k = loss.outputs
        let binner = Binner(x, maxBins: p.maxBins, seed: p.seed)
        let bins = binner.bin(x)
        let baseline = Self.baseline(targets, loss)
        var raw = [Double](repeating: 0, count: n * k)
        for i in 0..<n { for c in 0..<k { raw[i * k + c] = baseline[c] } }
        let validationBins = validation.map { binner.bin($0.x) }
        var validationRaw = [Double](repeating: 0, count: (validation?.x.count ?? 0) * k)
        if let validation { for i in 0..<validation.x.count { for c in 0..<k { validationRaw[i * k + c] = baseline[c] } } }
        var validationLoss: [Double] = []
        let grower = TreeGrower(bins: bins, rows: n, features: x.width, thresholds: binner.thresholds, parameters: p)
        var g = [Double](repeating: 0, count: n * k)
        var h = [Double](repeating: 0, count: n * k)
        var trees: [[Tree]] = []
        var stoppedEarly = false
        if let validation { validationLoss.append(Self.loss(validationRaw, validation.targets, loss)) }
        for _ in 0..<p.maxIterations {
            gradients(raw, targets, loss, &g, &h)
            var iteration: [Tree] = []
            for c in 0..<k {
                let grown = grower.grow(gradients: g, hessians: h, output: c, outputs: k)
                // Training scores move by the leaf values of the rows' leaves.
                for (leaf, range) in grown.leafRows {
                    let value = grown.tree.value[leaf]
                    grower.forEachRow(in: range) { raw[$0 * k + c] += value }
                }
                if let validation {
                    let m = validation.x.count
                    validationBins!.withUnsafeBufferPointer { vb in
                        for i in 0..<m { validationRaw[i * k + c] += grown.binned.leaf(vb.baseAddress!, row: i, count: m) }
                    }
                }
                iteration.append(grown.tree)
            }
            trees.append(iteration)
            if let validation {
                validationLoss.append(Self.loss(validationRaw, validation.targets, loss))
                if shouldStop(validationLoss, patience: p.patience, tolerance: p.tolerance) {
                    stoppedEarly = true
                    break
                }
            }
            // Nothing left to learn: every tree of the iteration is one leaf.
            if iteration.allSatisfy({ $0.feature.count == 1 }) { break }
        }
        return Outcome(
            ensemble: TreeEnsemble(baseline: baseline, trees: trees, validationLoss: validation == nil ? nil : validationLoss),
            iterations: trees.count, stoppedEarly: stoppedEarly)
    }

    /// scikit-learn's rule: stop when none of the last `patience` losses beats the one before
    /// them by more than `tolerance`.
    static func shouldStop(_ losses: [Double], patience: Int, tolerance: Double) -> Bool {
        guard losses.count > patience else { return false }
        let reference = losses[losses.count - patience - 1] - tolerance
        return !losses.suffix(patience).contains { $0 < reference }
    }

    static func baseline(_ y: [Double], _ loss: BoostingLoss) -> [Double] {
        let n = Double(y.count)
        switch loss {
        case .squaredError:
            return [y.reduce(0, +) / n]
        case .binary:
            let p = min(max(y.reduce(0, +) / n, 1e-12), 1 - 1e-12)
            return [log(p / (1 - p))]
        case .multinomial(let k):
            var counts = [Double](repeating: 0, count: k)
            for v in y { counts[Int(v)] += 1 }
            let logs = counts.map { log(max($0 / n, 1e-12)) }
            let mean = logs.reduce(0, +) / Double(k)
            return logs.map { $0 - mean }
        }
    }

    static func gradients(_ raw: [Double], _ y: [Double], _ loss: BoostingLoss, _ g: inout [Double], _ h: inout [Double]) {
        let n = y.count
        g.withUnsafeMutableBufferPointer { gp in
            h.withUnsafeMutableBufferPointer { hp in
                let gb = gp.baseAddress!
                let hb = hp.baseAddress!
                Parallel.ranges(n, minimum: 16384) { range, _ in
                    switch loss {
                    case .squaredError:
                        for i in range {
                            gb[i] = raw[i] - y[i]
                            hb[i] = 1
                        }
                    case .binary:
                        for i in range {
                            let p = 1 / (1 + exp(-raw[i]))
                            gb[i] = p - y[i]
                            hb[i] = max(p * (1 - p), 1e-16)
                        }
                    case .multinomial(let k):
                        for i in range {
                            var top = -Double.infinity
                            for c in 0..<k { top = max(top, raw[i * k + c]) }
                            var total = 0.0
                            for c in 0..<k { total += exp(raw[i * k + c] - top) }
                            let label = Int(y[i])
                            for c in 0..<k {
                                let p = exp(raw[i * k + c] - top) / total
                                gb[i * k + c] = p - (c == label ? 1 : 0)
                                hb[i * k + c] = max(p * (1 - p), 1e-16)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Mean loss: half squared error, or log loss.
    static func loss(_ raw: [Double], _ y: [Double], _ loss: BoostingLoss) -> Double {
        let n = y.count
        guard n > 0 else { return 0 }
        var total = 0.0
        switch loss {
        case .squaredError:
            for i in 0..<n { total += 0.5 * (raw[i] - y[i]) * (raw[i] - y[i]) }
        case .binary:
            for i in 0..<n { total += max(raw[i], 0) + log1p(exp(-abs(raw[i]))) - y[i] * raw[i] }
        case .multinomial(let k):
            for i in 0..<n {
                var top = -Double.infinity
                for c in 0..<k { top = max(top, raw[i * k + c]) }
                var sum = 0.0
                for c in 0..<k { sum += exp(raw[i * k + c] - top) }
                total += log(sum) + top - raw[i * k + Int(y[i])]
            }
        }
        return total / Double(n)
    }
}

/// A tree over bins, as grown (for scoring binned validation rows), before thresholds become
/// values.
struct BinnedTree {
    var feature: [Int32] = []
    var bin: [UInt8] = []
    var missingLeft: [Bool] = []
    var left: [Int32] = []
    var right: [Int32] = []
    var value: [Double] = []

    func leaf(_ bins: UnsafePointer<UInt8>, row: Int, count: Int) -> Double {
        var node = 0
        while true {
            let f = Int(feature[node])
            if f < 0 { return value[node] }
            let b = bins[f * count + row]
            let goLeft = b == Binner.missingBin ? missingLeft[node] : b <= bin[node]
            node = Int(goLeft ? left[node] : right[node])
        }
    }
}
