import Foundation
import LoomCore

/// How `split` divides a table: exact shares, a seed, optionally kept per class of a column.
public struct SplitPlan: Sendable, Codable, Hashable {
    public var train: Double
    public var validation: Double
    public var test: Double
    public var seed: UInt64
    /// Keep each class of this column in the same proportions in every part.
    public var stratify: String?

    public init(train: Double = 0.8, validation: Double = 0.1, test: Double = 0.1, seed: UInt64 = 42, stratify: String? = nil) {
        self.train = train
        self.validation = validation
        self.test = test
        self.seed = seed
        self.stratify = stratify
    }

    public static let parts = ["train", "validation", "test"]

    var shares: [Double] { [train, validation, test] }

    public func check() throws(LoomError) {
        guard shares.allSatisfy({ $0 >= 0 && $0 <= 1 }), train > 0 else {
            throw .invalidParameter("Split shares must be between 0 and 1, and train above 0")
        }
        guard abs(train + validation + test - 1) < 1e-9 else {
            throw .invalidParameter("Split shares must add up to 1 (train \(train) + validation \(validation) + test \(test))")
        }
    }

    /// Rows per part for `n` rows: validation and test rounded, train the rest.
    func counts(_ n: Int64) -> [Int64] {
        let validation = Int64((Double(n) * self.validation).rounded())
        let test = Swift.min(Int64((Double(n) * self.test).rounded()), n - validation)
        return [n - validation - test, validation, test]
    }
}

/// The first pass of a split: rows, and rows per class of the stratifying column.
public struct SplitCounter: RowSink {
    public static let maxClasses = 10_000
    let stratify: String?
    private var column = -1
    public private(set) var rows: Int64 = 0
    public private(set) var classes: [[UInt8]?: Int64] = [:]

    public init(stratify: String?) { self.stratify = stratify }

    public mutating func begin(columns: [String]) throws {
        guard let stratify else { return }
        guard let i = columns.firstIndex(of: stratify) else { throw LoomError.invalidParameter("stratify: no column named \(stratify)") }
        column = i
    }

    public mutating func consume(_ row: Row) throws {
        rows += 1
        guard column >= 0 else { return }
        let key: [UInt8]? = row.kind(column) == .null ? nil : row.withBytes(column) { Array($0) }
        if classes[key] == nil, classes.count >= Self.maxClasses {
            throw LoomError.invalidParameter("stratify: \(stratify ?? "") has more than \(Self.maxClasses) distinct values; stratify by a column of classes")
        }
        classes[key, default: 0] += 1
    }
}

/// The second pass: sends each row to one part, by sequential selection sampling (each part
/// receives exactly its count, every assignment equally likely), per class when stratified. Writes
/// each part as CSV.
public struct Splitter: RowSink {
    let plan: SplitPlan
    let outputs: [String?]
    private var writers: [CSVWriter?] = []
    private var column = -1
    /// Rows still to assign per part: overall, or per class.
    private var remaining: [[UInt8]?: [Int64]] = [:]
    private var rng: SplitMix64
    public private(set) var written: [Int64] = [0, 0, 0]

    /// `outputs`: a path per part (nil for a part with no rows); `counter`: the first pass.
    public init(plan: SplitPlan, outputs: [String?], counter: SplitCounter) {
        self.plan = plan
        self.outputs = outputs
        rng = SplitMix64(seed: plan.seed)
        if plan.stratify == nil {
            remaining[nil] = plan.counts(counter.rows)
        } else {
            for (key, n) in counter.classes { remaining[key] = plan.counts(n) }
        }
    }

    public mutating func begin(columns: [String]) throws {
        if let s = plan.stratify {
            guard let i = columns.firstIndex(of: s) else { throw LoomError.invalidParameter("stratify: no column named \(s)") }
            column = i
        }
        writers = try outputs.map { path in try path.map { try CSVWriter(path: $0, columns: columns) } }
    }

    public mutating func consume(_ row: Row) throws {
        let key: [UInt8]? = column < 0 || row.kind(column) == .null ? nil : row.withBytes(column) { Array($0) }
        guard var left = remaining[key] else { throw LoomError.invalidState("the data changed between the two passes of split") }
        let total = left.reduce(0, +)
        guard total > 0 else { throw LoomError.invalidState("the data changed between the two passes of split") }
        // Part p with probability left[p] / total.
        var pick = Int64(rng.next() % UInt64(total))
        var part = 0
        while pick >= left[part] {
            pick -= left[part]
            part += 1
        }
        left[part] -= 1
        remaining[key] = left
        written[part] += 1
        var fields: [ArraySlice<UInt8>?] = []
        fields.reserveCapacity(row.count)
        for i in 0..<row.count { fields.append(row.kind(i) == .null ? nil : row.withBytes(i) { Array($0)[...] }) }
        try writers[part]?.write(fields)
    }

    public mutating func finish() throws {
        for w in writers { try w?.close() }
        writers = []
    }
}
