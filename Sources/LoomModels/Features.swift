import Foundation
import LoomCore

/// One column a model reads, and how it becomes features.
public struct ModelInput: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// One feature: the value (missing: `fill`, or NaN where the model handles it).
        case number
        /// One feature per category (one-hot); a category the model never saw, or a missing
        /// value, sets none of them.
        case category
    }

    public var name: String
    public var kind: Kind
    public var categories: [String]?
    /// What a missing number becomes (linear models: the training mean). Nil: it stays missing
    /// (gradient-boosted trees send it down the branch learned for missing values).
    public var fill: Double?

    public init(name: String, kind: Kind, categories: [String]? = nil, fill: Double? = nil) {
        self.name = name
        self.kind = kind
        self.categories = categories
        self.fill = fill
    }

    public var width: Int { kind == .number ? 1 : (categories?.count ?? 0) }

    public var featureNames: [String] {
        kind == .number ? [name] : (categories ?? []).map { "\(name)=\($0)" }
    }
}

/// Features by row: `count` rows of `width` values, one row after another.
public struct FeatureMatrix: Sendable {
    public var count: Int
    public var width: Int
    public var values: [Double]

    public init(count: Int, width: Int, values: [Double]) {
        self.count = count
        self.width = width
        self.values = values
    }

    public subscript(row: Int, feature: Int) -> Double { values[row * width + feature] }

    /// One feature's values, top to bottom.
    public func column(_ j: Int) -> [Double] {
        (0..<count).map { values[$0 * width + j] }
    }
}

public enum FeatureEncoding {
    /// Turns a frame's columns into features, as `inputs` say. Errors name the column.
    public static func matrix(_ frame: Frame, inputs: [ModelInput]) throws(LoomError) -> FeatureMatrix {
        let width = inputs.reduce(0) { $0 + $1.width }
        let n = frame.rowCount
        var values = [Double](repeating: 0, count: n * width)
        var offset = 0
        for input in inputs {
            guard let c = frame.index(of: input.name) else {
                throw LoomError.invalidParameter("the data has no column \(input.name), which the model reads")
            }
            switch (input.kind, frame.columns[c]) {
            case (.number, .numbers(let v)):
                let fill = input.fill ?? .nan
                for i in 0..<n {
                    let x = v[i]
                    guard x.isFinite || x.isNaN else {
                        throw LoomError.invalidParameter("column \(input.name) has an infinite value in row \(i + 1)")
                    }
                    values[i * width + offset] = x.isNaN ? fill : x
                }
            case (.number, .categories(let codes, let levels)):
                let bad = codes.first { $0 >= 0 }.map { levels[Int($0)] } ?? ""
                throw LoomError.invalidParameter("column \(input.name) should hold numbers but holds text such as '\(bad)'")
            case (.category, .categories(let codes, let levels)):
                let position = Dictionary(uniqueKeysWithValues: (input.categories ?? []).enumerated().map { ($1, $0) })
                let map = levels.map { position[$0] ?? -1 }
                for i in 0..<n where codes[i] >= 0 {
                    let k = map[Int(codes[i])]
                    if k >= 0 { values[i * width + offset + k] = 1 }
                }
            case (.category, .numbers(let v)):
                let position = Dictionary(uniqueKeysWithValues: (input.categories ?? []).enumerated().map { ($1, $0) })
                for i in 0..<n where !v[i].isNaN {
                    if let k = position[Frame.text(of: v[i])] { values[i * width + offset + k] = 1 }
                }
            }
            offset += input.width
        }
        return FeatureMatrix(count: n, width: width, values: values)
    }

    /// The inputs a model trains on: every column but the target (or those named), numbers as
    /// numbers and text as one-hot categories (the `maxCategories` most frequent; ties by text).
    /// Columns with no values at all are left out and reported.
    public static func inputs(
        for frame: Frame, target: String, only: [String]?, exclude: Set<String>, maxCategories: Int, fillMissing: Bool
    ) throws(LoomError) -> (inputs: [ModelInput], skipped: [String]) {
        var names = only ?? frame.names.filter { $0 != target && !exclude.contains($0) }
        names.removeAll { exclude.contains($0) }
        for name in names where frame.index(of: name) == nil {
            throw LoomError.invalidParameter("the data has no column \(name)")
        }
        if names.contains(target) { throw LoomError.invalidParameter("the target \(target) cannot also be a feature") }
        var inputs: [ModelInput] = []
        var skipped: [String] = []
        for name in names {
            switch frame.columns[frame.index(of: name)!] {
            case .numbers(let v):
                var sum = 0.0
                var count = 0
                for (i, x) in v.enumerated() {
                    if x.isNaN { continue }
                    guard x.isFinite else {
                        throw LoomError.invalidParameter("column \(name) has an infinite value in row \(i + 1); replace or drop it first")
                    }
                    sum += x
                    count += 1
                }
                if count == 0 { skipped.append(name); continue }
                inputs.append(ModelInput(name: name, kind: .number, fill: fillMissing ? sum / Double(count) : nil))
            case .categories(let codes, let levels):
                var counts = [Int](repeating: 0, count: levels.count)
                for c in codes where c >= 0 { counts[Int(c)] += 1 }
                let present = levels.indices.filter { counts[$0] > 0 }
                if present.isEmpty { skipped.append(name); continue }
                let kept = present.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : levels[$0] < levels[$1] }
                    .prefix(maxCategories).map { levels[$0] }.sorted()
                inputs.append(ModelInput(name: name, kind: .category, categories: kept))
            }
        }
        guard !inputs.isEmpty else {
            throw LoomError.invalidParameter("no features to train on" + (skipped.isEmpty ? "" : " (columns with no values: \(skipped.joined(separator: ", ")))"))
        }
        return (inputs, skipped)
    }
}
