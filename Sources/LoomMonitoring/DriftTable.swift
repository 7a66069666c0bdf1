import Foundation
import LoomCore
import LoomData
import Synchronization

/// A table read for drift analysis, by column: numbers (NaN for missing) while every value
/// reads as a number, counts of each distinct text otherwise (row order does not matter to drift).
public struct DriftTable: Sendable {
    public enum Values: Sendable {
        /// The finite values, sorted (the order of rows does not matter to drift), and how many
        /// were missing or infinite. `integral`: every value was written as an integer and none
        /// is missing (pandas would read an int64 column).
        case numbers(NumberColumn)
        /// How many rows hold each of `levels`, and how many are missing.
        case texts(TextColumn)
    }

    public var names: [String]
    public var columns: [Values]
    public var rowCount: Int

    public init(names: [String], columns: [Values], rowCount: Int) {
        self.names = names
        self.columns = columns
        self.rowCount = rowCount
    }

    public func column(_ name: String) -> Values? {
        names.firstIndex(of: name).map { columns[$0] }
    }

    /// Reads a CSV or JSON Lines file (or a folder of them) whole.
    public static func read(path: String) throws -> DriftTable {
        try read(files: try TableFiles.list(path))
    }

    /// Reads table files whole, one after the other.
    public static func read(files: [TableFile]) throws -> DriftTable {
        var loader = Loader()
        _ = try TableReader.read(files, into: &loader, digesting: false)
        return loader.table()
    }

    /// Reads two tables at once, one thread each.
    public static func read(_ first: String, _ second: String) throws -> (DriftTable, DriftTable) {
        let results = Mutex<[Int: Result<DriftTable, any Error>]>([:])
        let paths = [first, second]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = Result { try read(path: paths[i]) }
            results.withLock { $0[i] = r }
        }
        return try results.withLock { (try $0[0]!.get(), try $0[1]!.get()) }
    }
}

/// A text column as drift reads it.
public struct TextColumn: Sendable {
    public var levels: [String]
    public var counts: [Int]
    public var missing: Int

    public init(levels: [String], counts: [Int], missing: Int) {
        self.levels = levels
        self.counts = counts
        self.missing = missing
    }

    /// Rows with a value.
    public var present: Int { counts.reduce(0, +) }
}

/// A numerical column as drift reads it.
public struct NumberColumn: Sendable {
    public var sorted: [Double]
    public var missing: Int
    public var infinite: Int
    public var integral: Bool

    /// Cleans and sorts `values` (NaN: missing).
    public init(_ values: [Double], integral: Bool) {
        var v = values
        self.init(taking: &v, integral: integral)
    }

    /// Cleans and sorts `values` in their own storage, leaving `values` empty.
    public init(taking values: inout [Double], integral: Bool) {
        var v: [Double] = []
        swap(&v, &values)
        let count = v.count
        var missing = 0, infinite = 0, n = 0
        v.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count {
                let x = b[i]
                if x.isNaN {
                    missing += 1
                } else if x.isInfinite {
                    infinite += 1
                } else {
                    b[n] = x
                    n += 1
                }
            }
        }
        v.removeLast(v.count - n)
        NumpyMath.sortInPlace(&v)
        self.sorted = v
        self.missing = missing
        self.infinite = infinite
        self.integral = integral && missing == 0 && count > 0
    }
}

/// Builds a `DriftTable` from records.
struct Loader: RowSink {
    struct Builder {
        var numbers: [Double] = []
        var integral = true
        var missing = false
        /// Set once the column turns out to hold text.
        var isText = false
        var index: [String: Int] = [:]
        var levels: [String] = []
        var counts: [Int] = []
        var textMissing = 0

        mutating func count(_ text: String) {
            if let c = index[text] {
                counts[c] += 1
                return
            }
            index[text] = levels.count
            levels.append(text)
            counts.append(1)
        }

        mutating func appendMissing() {
            if isText {
                textMissing += 1
            } else {
                numbers.append(.nan)
                missing = true
            }
        }

        mutating func appendNumber(_ value: Double, integral: Bool) {
            if isText {
                count(NumberText.text(of: value))
                return
            }
            numbers.append(value)
            if !integral { self.integral = false }
        }

        /// Text: the column holds text from now on (the numbers so far become their texts).
        mutating func appendText(_ text: String) {
            becomeText()
            count(text)
        }

        mutating func count(_ text: String, times n: Int) {
            guard n > 0 else { return }
            if let c = index[text] {
                counts[c] += n
                return
            }
            index[text] = levels.count
            levels.append(text)
            counts.append(n)
        }

        mutating func appendMissing(count n: Int) {
            guard n > 0 else { return }
            if isText {
                textMissing += n
            } else {
                numbers.append(contentsOf: repeatElement(.nan, count: n))
                missing = true
            }
        }

        /// Turns a column of numbers into one of texts.
        mutating func becomeText() {
            guard !isText else { return }
            isText = true
            for x in numbers {
                if x.isNaN { textMissing += 1 } else { count(NumberText.text(of: x)) }
            }
            numbers = []
        }

        /// Adds the rows of `other` after these.
        mutating func append(contentsOf other: Builder) {
            if !isText, !other.isText {
                numbers.append(contentsOf: other.numbers)
                integral = integral && other.integral
                missing = missing || other.missing
                return
            }
            becomeText()
            if other.isText {
                for (k, text) in other.levels.enumerated() { count(text, times: other.counts[k]) }
                textMissing += other.textMissing
            } else {
                for x in other.numbers {
                    if x.isNaN { textMissing += 1 } else { count(NumberText.text(of: x)) }
                }
            }
        }

        /// The column, once every row is in; leaves the builder empty.
        mutating func finish() -> DriftTable.Values {
            if isText {
                let column = TextColumn(levels: levels, counts: counts, missing: textMissing)
                (index, levels, counts) = ([:], [], [])
                return .texts(column)
            }
            let integral = self.integral && !missing
            return .numbers(NumberColumn(taking: &numbers, integral: integral))
        }
    }

    var names: [String] = []
    var builders: [Builder] = []
    var rows = 0

    mutating func begin(columns: [String]) throws {
        names = columns
        builders = columns.map { _ in Builder() }
    }

    mutating func addColumn(_ name: String) throws {
        names.append(name)
        var b = Builder()
        b.numbers = [Double](repeating: .nan, count: rows)
        b.missing = rows > 0
        builders.append(b)
    }

    mutating func consume(_ row: Row) throws {
        for i in 0..<builders.count {
            append(row, i)
        }
        rows += 1
    }

    mutating func append(_ row: Row, _ i: Int) {
        let kind = i < row.count ? row.kind(i) : .null
        if kind == .null {
            builders[i].appendMissing()
        } else if !builders[i].isText, kind == .text || kind == .number, let parsed = row.withBytes(i, { NumberText.parse($0) }) {
            builders[i].appendNumber(parsed.value, integral: parsed.integral)
        } else {
            builders[i].appendText(row.string(i) ?? "")
        }
    }

    /// The table; each numerical column is cleaned and sorted here, its raw values let go one
    /// column at a time (so the raw and the sorted copies of a whole table never coexist).
    mutating func table() -> DriftTable {
        var columns: [DriftTable.Values] = []
        for i in builders.indices { columns.append(builders[i].finish()) }
        return DriftTable(names: names, columns: columns, rowCount: rows)
    }
}
