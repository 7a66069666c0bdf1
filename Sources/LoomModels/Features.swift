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
}

public enum FeatureEncoding {
    /// Turns a frame's columns into features, as `inputs` say. Errors name the column.
    /// Per input: where its features start and how each value of its column maps to them.
    struct Source {
        var offset: Int
        var numbers: [Double]?
        var fill: Double
        var codes: [Int32]?
        /// Category code → feature within the input (-1: none).
        var map: [Int]
    }

    /// Checks the frame's columns against the inputs (present, numbers where numbers are read,
    /// no infinities) and says where each input's values come from.
    static func sources(_ frame: Frame, inputs: [ModelInput]) throws(LoomError) -> [Source] {
        var columns: [Frame.Column] = []
        for input in inputs {
            guard let c = frame.index(of: input.name) else {
                throw LoomError.invalidParameter("the data has no column \(input.name), which the model reads")
            }
            let column = frame.columns[c]
            if input.kind == .number {
                switch column {
                case .numbers(let v):
                    if let bad = v.firstIndex(where: { $0.isInfinite }) {
                        throw LoomError.invalidParameter("column \(input.name) has an infinite value in row \(bad + 1)")
                    }
                case .categories(let codes, let levels):
                    let bad = codes.first { $0 >= 0 }.map { levels[Int($0)] } ?? ""
                    throw LoomError.invalidParameter("column \(input.name) should hold numbers but holds text such as '\(bad)'")
                }
            }
            columns.append(column)
        }
        var sources: [Source] = []
        var offset = 0
        for (input, column) in zip(inputs, columns) {
            let position = Dictionary(uniqueKeysWithValues: (input.categories ?? []).enumerated().map { ($1, $0) })
            switch (input.kind, column) {
            case (.number, .numbers(let v)):
                sources.append(Source(offset: offset, numbers: v, fill: input.fill ?? .nan, codes: nil, map: []))
            case (.category, .categories(let codes, let levels)):
                sources.append(Source(offset: offset, numbers: nil, fill: 0, codes: codes, map: levels.map { position[$0] ?? -1 }))
            case (.category, .numbers(let v)):
                // Numbers read as text: code by their text.
                var texts: [String: Int32] = [:]
                var map: [Int] = []
                let codes: [Int32] = v.map { x in
                    if x.isNaN { return -1 }
                    let t = Frame.text(of: x)
                    if let c = texts[t] { return c }
                    let c = Int32(map.count)
                    texts[t] = c
                    map.append(position[t] ?? -1)
                    return c
                }
                sources.append(Source(offset: offset, numbers: nil, fill: 0, codes: codes, map: map))
            case (.number, .categories):
                break  // refused above
            }
            offset += input.width
        }
        return sources
    }

    public static func matrix(_ frame: Frame, inputs: [ModelInput]) throws(LoomError) -> FeatureMatrix {
        let width = inputs.reduce(0) { $0 + $1.width }
        let n = frame.rowCount
        let sources = try Self.sources(frame, inputs: inputs)
        var values = [Double](repeating: 0, count: n * width)
        values.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            // By blocks of rows, so that the rows being written stay in cache while every
            // column is copied into them.
            Parallel.ranges(n, minimum: 16384) { range, _ in
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(start + 512, range.upperBound)
                    for source in sources {
                        if let numbers = source.numbers {
                            numbers.withUnsafeBufferPointer { v in
                                for i in start..<end {
                                    let x = v[i]
                                    base[i * width + source.offset] = x.isNaN ? source.fill : x
                                }
                            }
                        } else if let codes = source.codes {
                            codes.withUnsafeBufferPointer { c in
                                for i in start..<end where c[i] >= 0 {
                                    let k = source.map[Int(c[i])]
                                    if k >= 0 { base[i * width + source.offset + k] = 1 }
                                }
                            }
                        }
                    }
                    start = end
                }
            }
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
