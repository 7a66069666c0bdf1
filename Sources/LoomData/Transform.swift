import Foundation
import LoomCore
import Yams

/// A `transform`: steps applied to each row in order. Steps that learn from the data
/// (`one_hot`, `standardize`, `normalize`) are fitted on it first, one pass each, and the fitted
/// plan (with the categories, means and ranges it learned) is kept with the output so that the
/// same transform can be applied to other data (`--apply`) and at inference.
public struct TransformPlan: Sendable, Codable, Hashable {
    public struct Derived: Sendable, Codable, Hashable {
        public var name: String
        public var expression: String

        public init(name: String, expression: String) {
            self.name = name
            self.expression = expression
        }
    }

    /// What a fitted `standardize` or `normalize` learned about a column.
    public struct Statistic: Sendable, Codable, Hashable {
        public var mean: Double?
        public var std: Double?
        public var min: Double?
        public var max: Double?
    }

    public struct Step: Sendable, Codable, Hashable {
        public enum Kind: String, Sendable, Codable, CaseIterable {
            /// Keep the rows for which `expression` is true.
            case filter
            /// Add (or replace) columns computed by expressions.
            case derive
            /// Keep these columns, in this order.
            case select
            /// Remove these columns.
            case drop
            /// Replace each column by one 0/1 column per category (`column=value`).
            case oneHot = "one_hot"
            /// (x − mean) / std (population std; a constant column becomes 0).
            case standardize
            /// (x − min) / (max − min), into [0, 1] on the fitted data.
            case normalize
        }

        enum CodingKeys: String, CodingKey {
            case kind, expression, derived, columns, categories, statistics
            case maxCategories = "max_categories"
        }

        public var kind: Kind
        public var expression: String?
        public var derived: [Derived]?
        public var columns: [String]?
        public var maxCategories: Int?
        /// Fitted `one_hot`: column → its categories, in output order.
        public var categories: [String: [String]]?
        /// Fitted `standardize` / `normalize`: column → statistics.
        public var statistics: [String: Statistic]?

        public init(kind: Kind, expression: String? = nil, derived: [Derived]? = nil, columns: [String]? = nil, maxCategories: Int? = nil) {
            self.kind = kind
            self.expression = expression
            self.derived = derived
            self.columns = columns
            self.maxCategories = maxCategories
        }

        var learns: Bool { kind == .oneHot || kind == .standardize || kind == .normalize }
        var fitted: Bool { !learns || categories != nil || statistics != nil }
    }

    public var steps: [Step]

    public init(steps: [Step]) { self.steps = steps }

    /// Whether every learning step has its parameters.
    public var isFitted: Bool { steps.allSatisfy(\.fitted) }

    /// Checks the steps: expressions parse, lists are not empty, names are sane.
    public func check() throws(LoomError) {
        guard !steps.isEmpty else { throw LoomError.invalidParameter("the transform has no steps") }
        for (i, s) in steps.enumerated() {
            let label = "step \(i + 1) (\(s.kind.rawValue))"
            switch s.kind {
            case .filter:
                guard let e = s.expression else { throw LoomError.invalidParameter("\(label) needs an expression") }
                _ = try Expression(e)
            case .derive:
                guard let d = s.derived, !d.isEmpty else { throw LoomError.invalidParameter("\(label) needs columns to derive") }
                for item in d {
                    guard !item.name.isEmpty else { throw LoomError.invalidParameter("\(label): a derived column needs a name") }
                    _ = try Expression(item.expression)
                }
            default:
                guard let c = s.columns, !c.isEmpty else { throw LoomError.invalidParameter("\(label) needs columns") }
                if let m = s.maxCategories, m < 1 { throw LoomError.invalidParameter("\(label): max_categories must be at least 1") }
            }
        }
    }

    /// The transform without what it learned (to fit it again on other data).
    public var unfitted: TransformPlan {
        TransformPlan(steps: steps.map { var s = $0; s.categories = nil; s.statistics = nil; return s })
    }

    /// Parses a YAML transform:
    ///
    /// ```yaml
    /// steps:
    ///   - filter: "age >= 18 and country != 'NO'"
    ///   - derive: {bmi: "weight / (height / 100) ^ 2"}
    ///   - select: [age, bmi, color, churned]
    ///   - one_hot: [color]          # or {columns: [color], max_categories: 20}
    ///   - standardize: [age, bmi]
    /// ```
    public static func parse(yaml text: String) throws(LoomError) -> TransformPlan {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw LoomError.invalidParameter("The transform is not valid YAML: \(error)")
        }
        guard let map = root?.mapping, let list = map["steps"]?.sequence else {
            throw LoomError.invalidParameter("The transform file needs a list under 'steps:'")
        }
        if let extra = map.keys.compactMap(\.string).first(where: { $0 != "steps" }) {
            throw LoomError.invalidParameter("Unknown key '\(extra)' at the top of the transform file")
        }
        var steps: [Step] = []
        for (i, item) in list.enumerated() {
            let label = "step \(i + 1)"
            guard let m = item.mapping, m.count == 1, let (keyNode, value) = m.first, let key = keyNode.string else {
                throw LoomError.invalidParameter("\(label) must be one key (filter, derive, select, drop, one_hot, standardize, normalize) with its value")
            }
            guard let kind = Step.Kind(rawValue: key) else {
                throw LoomError.invalidParameter("\(label): unknown step '\(key)' (filter, derive, select, drop, one_hot, standardize, normalize)")
            }
            func names(_ n: Node) throws(LoomError) -> [String] {
                guard let seq = n.sequence else { throw LoomError.invalidParameter("\(label) (\(key)) needs a list of columns") }
                var out: [String] = []
                for c in seq {
                    guard let s = c.string else { throw LoomError.invalidParameter("\(label) (\(key)): column names are text") }
                    out.append(s)
                }
                return out
            }
            switch kind {
            case .filter:
                guard let e = value.string else { throw LoomError.invalidParameter("\(label) (filter) needs an expression") }
                steps.append(Step(kind: .filter, expression: e))
            case .derive:
                guard let pairs = value.mapping else { throw LoomError.invalidParameter("\(label) (derive) needs a mapping of column: expression") }
                var derived: [Derived] = []
                for (k, v) in pairs {
                    guard let name = k.string, let e = v.string else { throw LoomError.invalidParameter("\(label) (derive): column: expression, both text") }
                    derived.append(Derived(name: name, expression: e))
                }
                steps.append(Step(kind: .derive, derived: derived))
            case .oneHot:
                if let m = value.mapping {
                    for k in m.keys.compactMap(\.string) where k != "columns" && k != "max_categories" {
                        throw LoomError.invalidParameter("\(label) (one_hot): unknown key '\(k)'")
                    }
                    guard let c = m["columns"] else { throw LoomError.invalidParameter("\(label) (one_hot) needs columns") }
                    var max: Int?
                    if let mc = m["max_categories"] {
                        guard let v = mc.int else { throw LoomError.invalidParameter("\(label) (one_hot): max_categories is a number") }
                        max = v
                    }
                    steps.append(Step(kind: .oneHot, columns: try names(c), maxCategories: max))
                } else {
                    steps.append(Step(kind: .oneHot, columns: try names(value)))
                }
            default:
                steps.append(Step(kind: kind, columns: try names(value)))
            }
        }
        let plan = TransformPlan(steps: steps)
        try plan.check()
        return plan
    }
}

/// The steps compiled against a header: what each does to a row of values.
struct CompiledTransform: Sendable {
    enum Op: Sendable {
        case filter(CompiledExpression)
        /// Values to write at positions (an existing column's, or appended).
        case derive([(position: Int, expression: CompiledExpression)], width: Int)
        case project([Int])
        /// Per input position: nil to copy, or the categories whose 0/1 columns replace it.
        case oneHot([[String: Int]?], widths: [Int])
        case scale([(position: Int, shift: Double, divisor: Double, name: String)])
    }

    var ops: [Op] = []
    var columns: [String]

    /// Compiles the first `count` steps (all when nil) of a plan; those that learn must be fitted.
    init(_ plan: TransformPlan, columns input: [String], count: Int? = nil) throws(LoomError) {
        columns = input
        for (i, step) in plan.steps.prefix(count ?? plan.steps.count).enumerated() {
            let label = "step \(i + 1) (\(step.kind.rawValue))"
            func position(_ c: String) throws(LoomError) -> Int {
                guard let p = columns.firstIndex(of: c) else {
                    throw LoomError.invalidParameter("\(label): no column \(c) (columns: \(columns.prefix(20).joined(separator: ", ")))")
                }
                return p
            }
            switch step.kind {
            case .filter:
                ops.append(.filter(try Expression(step.expression ?? "").compile(columns: columns)))
            case .derive:
                var items: [(Int, CompiledExpression)] = []
                var next = columns
                for d in step.derived ?? [] {
                    // Each expression sees the columns as they were before the step.
                    let compiled = try Expression(d.expression).compile(columns: columns)
                    if let p = next.firstIndex(of: d.name) {
                        items.append((p, compiled))
                    } else {
                        items.append((next.count, compiled))
                        next.append(d.name)
                    }
                }
                ops.append(.derive(items, width: next.count))
                columns = next
            case .select:
                var picked: [Int] = []
                for c in step.columns ?? [] { picked.append(try position(c)) }
                ops.append(.project(picked))
                columns = picked.map { columns[$0] }
            case .drop:
                var dropped = Set<Int>()
                for c in step.columns ?? [] { dropped.insert(try position(c)) }
                let kept = columns.indices.filter { !dropped.contains($0) }
                ops.append(.project(kept))
                columns = kept.map { columns[$0] }
            case .oneHot:
                guard let categories = step.categories else { throw LoomError.invalidState("\(label) is not fitted") }
                var spec = [[String: Int]?](repeating: nil, count: columns.count)
                var widths = [Int](repeating: 1, count: columns.count)
                var next: [String] = []
                for c in step.columns ?? [] {
                    let p = try position(c)
                    let cats = categories[c] ?? []
                    spec[p] = Dictionary(cats.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                    widths[p] = cats.count
                }
                for (p, c) in columns.enumerated() {
                    if spec[p] != nil {
                        next += (categories[c] ?? []).map { "\(c)=\($0)" }
                    } else {
                        next.append(c)
                    }
                }
                ops.append(.oneHot(spec, widths: widths))
                columns = next
            case .standardize, .normalize:
                guard let statistics = step.statistics else { throw LoomError.invalidState("\(label) is not fitted") }
                var items: [(Int, Double, Double, String)] = []
                for c in step.columns ?? [] {
                    let s = statistics[c] ?? Statistic()
                    if step.kind == .standardize {
                        let std = s.std ?? 0
                        items.append((try position(c), s.mean ?? 0, std > 0 ? std : 1, c))
                    } else {
                        let lo = s.min ?? 0
                        let range = (s.max ?? lo) - lo
                        items.append((try position(c), lo, range > 0 ? range : 1, c))
                    }
                }
                ops.append(.scale(items))
            }
        }
    }

    typealias Statistic = TransformPlan.Statistic

    /// Applies the ops to a row's values; nil when a filter drops it.
    func apply(_ input: [Value], line: Int) throws(LoomError) -> [Value]? {
        var values = input
        for op in ops {
            switch op {
            case .filter(let e):
                guard try e.passes(values, line: line) else { return nil }
            case .derive(let items, let width):
                var next = values
                while next.count < width { next.append(.null) }
                for (p, e) in items { next[p] = try e.evaluate(values, line: line) }
                values = next
            case .project(let picked):
                values = picked.map { values[$0] }
            case .oneHot(let spec, let widths):
                var next: [Value] = []
                next.reserveCapacity(widths.reduce(0, +))
                for (p, v) in values.enumerated() {
                    guard let categories = spec[p] else {
                        next.append(v)
                        continue
                    }
                    let hit = v.written.flatMap { categories[$0] }
                    for k in 0..<widths[p] { next.append(.number(k == hit ? 1 : 0)) }
                }
                values = next
            case .scale(let items):
                for (p, shift, divisor, name) in items {
                    let v = values[p]
                    if v.isNull { continue }
                    guard let x = v.number else {
                        throw LoomError.invalidParameter("line \(line): column \(name) holds \(v.description), not a number, and cannot be scaled")
                    }
                    values[p] = .number((x - shift) / divisor)
                }
            }
        }
        return values
    }
}

/// A fitted transform bound to a header, for applying row by row outside a file pass (a model's
/// preprocessing at inference).
public struct TransformApplier: Sendable {
    let compiled: CompiledTransform
    public var columns: [String] { compiled.columns }

    /// `skipFilters`: keep every row (at inference a model scores every row it is given).
    public init(_ plan: TransformPlan, columns: [String], skipFilters: Bool) throws(LoomError) {
        var p = plan
        if skipFilters { p.steps.removeAll { $0.kind == .filter } }
        guard p.isFitted else { throw LoomError.invalidState("the transform is not fitted") }
        compiled = try CompiledTransform(p, columns: columns)
    }

    public func apply(_ values: [Value], line: Int) throws(LoomError) -> [Value]? {
        try compiled.apply(values, line: line)
    }
}

/// Fits one learning step: runs the steps before it (fitted) over every row and gathers what
/// the step needs about its columns.
struct TransformFitter: RowSink {
    let plan: TransformPlan
    let index: Int
    var compiled: CompiledTransform?
    var positions: [(name: String, position: Int)] = []
    var counts: [[String: Int]] = []
    var moments: [(n: Double, mean: Double, m2: Double, min: Double, max: Double)] = []
    var line = 0

    init(plan: TransformPlan, index: Int) {
        self.plan = plan
        self.index = index
    }

    mutating func begin(columns: [String]) throws {
        let c = try CompiledTransform(plan, columns: columns, count: index)
        let step = plan.steps[index]
        for name in step.columns ?? [] {
            guard let p = c.columns.firstIndex(of: name) else {
                throw LoomError.invalidParameter("step \(index + 1) (\(step.kind.rawValue)): no column \(name) (columns: \(c.columns.prefix(20).joined(separator: ", ")))")
            }
            positions.append((name, p))
        }
        counts = Array(repeating: [:], count: positions.count)
        moments = Array(repeating: (0, 0, 0, .infinity, -.infinity), count: positions.count)
        compiled = c
    }

    mutating func consume(_ row: Row) throws {
        let input = (0..<row.count).map { Value.of(row, $0) }
        guard let values = try compiled!.apply(input, line: row.line) else { return }
        let kind = plan.steps[index].kind
        for (k, (name, p)) in positions.enumerated() {
            let v = values[p]
            if v.isNull { continue }
            if kind == .oneHot {
                // Past 100,000 distinct values the rarest are no candidates anyway.
                if let text = v.written, counts[k][text] != nil || counts[k].count < 100_000 { counts[k][text, default: 0] += 1 }
            } else {
                guard let x = v.number, x.isFinite else {
                    throw LoomError.invalidParameter("line \(row.line): column \(name) holds \(v.description), not a finite number, and cannot be scaled")
                }
                var m = moments[k]
                m.n += 1
                let delta = x - m.mean
                m.mean += delta / m.n
                m.m2 += delta * (x - m.mean)
                m.min = Swift.min(m.min, x)
                m.max = Swift.max(m.max, x)
                moments[k] = m
            }
        }
    }

    /// The step with what it learned.
    func fitted() -> TransformPlan.Step {
        var step = plan.steps[index]
        if step.kind == .oneHot {
            let limit = step.maxCategories ?? 100
            var categories: [String: [String]] = [:]
            for (k, (name, _)) in positions.enumerated() {
                let c = counts[k]
                categories[name] = c.keys.sorted { c[$0]! != c[$1]! ? c[$0]! > c[$1]! : $0 < $1 }.prefix(limit).sorted()
            }
            step.categories = categories
        } else {
            var statistics: [String: TransformPlan.Statistic] = [:]
            for (k, (name, _)) in positions.enumerated() {
                let m = moments[k]
                statistics[name] = m.n > 0
                    ? .init(mean: m.mean, std: (m.m2 / m.n).squareRoot(), min: m.min, max: m.max)
                    : .init()
            }
            step.statistics = statistics
        }
        return step
    }
}

/// Applies a fitted transform to every row and writes the result as CSV.
public struct Transformer: RowSink {
    public struct Report: Sendable, Codable, Hashable {
        enum CodingKeys: String, CodingKey {
            case rowsIn = "rows_in", rowsOut = "rows_out", columns
        }
        public var rowsIn: Int64 = 0
        public var rowsOut: Int64 = 0
        public var columns: [String] = []
    }

    let plan: TransformPlan
    let output: String
    var compiled: CompiledTransform?
    var writer: CSVWriter?
    public private(set) var report = Report()

    public init(plan: TransformPlan, output: String) {
        self.plan = plan
        self.output = output
    }

    public mutating func begin(columns: [String]) throws {
        let c = try CompiledTransform(plan, columns: columns)
        let duplicates = Dictionary(grouping: c.columns, by: { $0 }).filter { $1.count > 1 }.keys
        if let d = duplicates.first { throw LoomError.invalidParameter("the transform makes the column \(d) twice") }
        guard !c.columns.isEmpty else { throw LoomError.invalidParameter("the transform leaves no columns") }
        compiled = c
        report.columns = c.columns
        writer = try CSVWriter(path: output, columns: c.columns)
    }

    public mutating func consume(_ row: Row) throws {
        report.rowsIn += 1
        let input = (0..<row.count).map { Value.of(row, $0) }
        guard let values = try compiled!.apply(input, line: row.line) else { return }
        try writer!.write(values.map { $0.written.map { ArraySlice($0.utf8) } })
        report.rowsOut += 1
    }

    public func finish() throws {
        try writer?.close()
    }

    /// Fits the learning steps, one pass over the files each (earlier steps applied, fitted).
    public static func fit(_ plan: TransformPlan, files: [TableFile]) throws -> (TransformPlan, TableContent?) {
        var fitted = plan
        var content: TableContent?
        for i in plan.steps.indices where !plan.steps[i].fitted {
            var fitter = TransformFitter(plan: fitted, index: i)
            content = try TableReader.read(files, into: &fitter)
            fitted.steps[i] = fitter.fitted()
        }
        return (fitted, content)
    }
}
