import Foundation
import LoomCore
import LoomData

/// A table held in memory by column, for training and batch inference: numbers as `Double`
/// (NaN for missing), anything else as codes into its distinct texts (-1 for missing).
public struct Frame: Sendable {
    public enum Column: Sendable {
        case numbers([Double])
        case categories(codes: [Int32], levels: [String])

        public var isNumeric: Bool { if case .numbers = self { return true } else { return false } }
    }

    public var names: [String]
    public var columns: [Column]
    public var rowCount: Int

    public init(names: [String], columns: [Column], rowCount: Int) {
        self.names = names
        self.columns = columns
        self.rowCount = rowCount
    }

    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// Reads a table's files whole. `categorical`: columns read as text even when every value
    /// is a number (a model's category inputs).
    public static func read(_ files: [TableFile], categorical: Set<String> = []) throws -> (Frame, TableContent) {
        var loader = FrameLoader(categorical: categorical)
        let content = try TableReader.read(files, into: &loader)
        return (loader.frame(), content)
    }

    /// The rows at `rows`, in that order.
    public func rows(_ rows: [Int]) -> Frame {
        Frame(names: names, columns: columns.map { column in
            switch column {
            case .numbers(let v): return .numbers(rows.map { v[$0] })
            case .categories(let codes, let levels): return .categories(codes: rows.map { codes[$0] }, levels: levels)
            }
        }, rowCount: rows.count)
    }

    /// The frame after a fitted transform (a model's preprocessing), row by row; filter steps
    /// must have been left out (every row is kept).
    public func transformed(by applier: TransformApplier) throws(LoomError) -> Frame {
        var builders = [FrameLoader.Builder](repeating: .init(), count: applier.columns.count)
        var values = [Value](repeating: .null, count: names.count)
        for i in 0..<rowCount {
            for (c, column) in columns.enumerated() {
                switch column {
                case .numbers(let v): values[c] = v[i].isNaN ? .null : .number(v[i])
                case .categories(let codes, let levels): values[c] = codes[i] < 0 ? .null : .field(levels[Int(codes[i])])
                }
            }
            guard let out = try applier.apply(values, line: i + 2) else { continue }
            for (c, v) in out.enumerated() { builders[c].append(v) }
        }
        return Frame(names: applier.columns, columns: builders.map { b in
            b.categorical ? .categories(codes: b.codes, levels: b.levels) : .numbers(b.numbers)
        }, rowCount: builders.first.map { $0.categorical ? $0.codes.count : $0.numbers.count } ?? 0)
    }

    /// The text a number stands for once its column turns out to hold text: integers without a
    /// fraction ("3", not "3.0").
    public static func text(of value: Double) -> String { NumberText.text(of: value) }
}

/// Builds a `Frame` from records.
struct FrameLoader: RowSink {
    struct Builder {
        var numbers: [Double] = []
        var categorical = false
        var codes: [Int32] = []
        var index: [String: Int32] = [:]
        var levels: [String] = []

        mutating func code(_ text: String) -> Int32 {
            if let c = index[text] { return c }
            let c = Int32(levels.count)
            levels.append(text)
            index[text] = c
            return c
        }

        mutating func becomeCategorical() {
            categorical = true
            codes.reserveCapacity(numbers.count)
            for v in numbers { codes.append(v.isNaN ? -1 : code(Frame.text(of: v))) }
            numbers = []
        }

        mutating func append(_ row: Row, _ i: Int) {
            let kind = row.kind(i)
            if kind == .null {
                if categorical { codes.append(-1) } else { numbers.append(.nan) }
                return
            }
            if !categorical, kind == .text || kind == .number, let v = row.double(i) {
                numbers.append(v)
                return
            }
            if !categorical { becomeCategorical() }
            codes.append(code(row.string(i) ?? ""))
        }

        mutating func append(_ v: Value) {
            switch v {
            case .null:
                appendMissing()
            case .number(let x):
                if categorical { codes.append(code(Frame.text(of: x))) } else { numbers.append(x) }
            case .field(let t), .text(let t):
                if !categorical, case .field = v, let x = v.number {
                    numbers.append(x)
                    return
                }
                if !categorical { becomeCategorical() }
                codes.append(code(t))
            case .bool(let b):
                if !categorical { becomeCategorical() }
                codes.append(code(b ? "true" : "false"))
            }
        }

        mutating func appendMissing() {
            if categorical { codes.append(-1) } else { numbers.append(.nan) }
        }
    }

    var names: [String] = []
    var builders: [Builder] = []
    var rows = 0
    let categorical: Set<String>

    init(categorical: Set<String>) { self.categorical = categorical }

    mutating func begin(columns: [String]) throws {
        for c in columns { try addColumn(c) }
    }

    mutating func addColumn(_ name: String) throws {
        names.append(name)
        var b = Builder()
        for _ in 0..<rows { b.appendMissing() }
        if categorical.contains(name) { b.becomeCategorical() }
        builders.append(b)
    }

    mutating func consume(_ row: Row) throws {
        for i in 0..<builders.count { builders[i].append(row, i) }
        rows += 1
    }

    func frame() -> Frame {
        Frame(names: names, columns: builders.map { b in
            b.categorical ? .categories(codes: b.codes, levels: b.levels) : .numbers(b.numbers)
        }, rowCount: rows)
    }
}
