import Foundation
import LoomCore

/// The outcome of checking a dataset against an expectation suite.
public struct ValidationReport: Sendable, Codable, Hashable {
    public var passed: Bool
    public var rows: Int64
    public var results: [ExpectationResult]
}

public struct ExpectationResult: Sendable, Codable, Hashable {
    public var name: String
    public var rule: Expectation.Rule
    public var column: String?
    public var passed: Bool
    /// Values (or rows) the rule looked at: missing values are skipped by every rule but
    /// `not_null`.
    public var checked: Int64
    /// How many of them failed.
    public var failures: Int64
    /// What went wrong, in words (nil when it passed).
    public var message: String?
    /// Up to `Validator.sampleLimit` failing rows.
    public var samples: [SampleRow]
}

/// A row that failed a rule: where it is and its values (missing values are null).
public struct SampleRow: Sendable, Codable, Hashable {
    public var file: String
    public var line: Int
    public var values: [String: String?]
}

/// Checks a table against an expectation suite as it streams by (a `RowSink`). A suite with a
/// `schema` rule profiles the table in the same pass (for the column types).
///
/// Memory: `unique` keeps a 64-bit fingerprint per distinct value (11 to 21 bytes each); every
/// other rule keeps a few counters and its samples.
public struct Validator: RowSink {
    public static let sampleLimit = 5
    let suite: ExpectationSuite
    let now: Double
    private var profiler: Profiler?
    private var rows: Int64 = 0
    private var columns: [String] = []
    private var states: [RuleState]

    struct RuleState {
        // The rule's parameters, copied out of its `Expectation` once (not per row).
        let rule: Expectation.Rule
        let min: Double?
        let max: Double?
        var column = -1
        var checked: Int64 = 0
        var failures: Int64 = 0
        var samples: [SampleRow] = []
        var seen = FingerprintSet()
        var allowed = ByteStringSet([])
        var regex: NSRegularExpression?
        /// Pattern results by value fingerprint (text columns repeat their values), for up to
        /// 65,536 values.
        var matching = FingerprintSet()
        var notMatching = FingerprintSet()
        var newest = -Double.infinity
    }

    /// `profiles`: whether to profile the table itself for `schema` rules (else `report(profile:)`
    /// is given the profile).
    public init(suite: ExpectationSuite, now: Date = Date(), profiles: Bool = true) {
        self.suite = suite
        self.now = now.timeIntervalSince1970
        if profiles, suite.expectations.contains(where: { $0.rule == .schema }) { profiler = Profiler() }
        states = suite.expectations.map { e in
            var s = RuleState(rule: e.rule, min: e.min, max: e.max)
            if let values = e.values { s.allowed = ByteStringSet(values) }
            if let p = e.pattern { s.regex = try? NSRegularExpression(pattern: p) }
            return s
        }
    }

    public mutating func begin(columns names: [String]) throws {
        try profiler?.begin(columns: names)
        columns = names
        resolve()
    }

    public mutating func addColumn(_ name: String) throws {
        try profiler?.addColumn(name)
        columns.append(name)
        resolve()
    }

    private mutating func resolve() {
        for (i, e) in suite.expectations.enumerated() where states[i].column < 0 {
            if let c = e.column, let index = columns.firstIndex(of: c) { states[i].column = index }
        }
    }

    public mutating func consume(_ row: Row) throws {
        try profiler?.consume(row)
        check(row)
    }

    /// Applies the rules to one record.
    mutating func check<R: RecordView>(_ row: R) {
        rows += 1
        for i in 0..<states.count {
            let c = states[i].column
            guard c >= 0 else { continue }
            let kind = c < row.count ? row.kind(c) : .null
            if kind == .null {
                if states[i].rule == .notNull { fail(i, row, checked: true) }
                continue
            }
            let ok = row.withBytes(c) { evaluate(i, kind, $0, padded: false) }
            states[i].checked += 1
            if !ok { fail(i, row, checked: false) }
        }
    }

    /// Applies the rules to the records of a batch, a rule at a time (the same results as
    /// record by record: each rule keeps its own counts and samples, in record order).
    mutating func check(_ batch: RowBatch) {
        rows += Int64(batch.count)
        for i in 0..<states.count where states[i].column >= 0 {
            switch states[i].rule {
            case .unique:
                checkUnique(i, batch)
            case .allowedValues:
                let allowed = states[i].allowed
                checkColumn(i, batch) { allowed.contains($0, fingerprint: CountTable.fingerprint(padded: $0)) }
            case .range:
                let (lo, hi) = (states[i].min ?? -.infinity, states[i].max ?? .infinity)
                checkColumn(i, batch) { b in
                    guard let v = NumberText.double(b), !v.isNaN else { return false }
                    return v >= lo && v <= hi
                }
            default:
                let width = batch.columns
                var f = states[i].column
                for r in 0..<batch.count {
                    defer { f += width }
                    let b = batch.field(f)
                    let kind = FieldKinds.of(b)
                    if kind == .null {
                        if states[i].rule == .notNull { fail(i, BatchRecord(batch: batch, index: r), checked: true) }
                        continue
                    }
                    let ok = evaluate(i, kind, b, padded: true)
                    states[i].checked += 1
                    if !ok { fail(i, BatchRecord(batch: batch, index: r), checked: false) }
                }
            }
        }
    }

    /// A rule whose test needs nothing but the value, over a batch's column: the values that
    /// fail are gathered, then recorded in order.
    @inline(__always)
    private mutating func checkColumn(_ i: Int, _ batch: RowBatch, _ test: (UnsafeBufferPointer<UInt8>) -> Bool) {
        let width = batch.columns
        var f = states[i].column
        var checked: Int64 = 0
        var failed: [Int] = []
        for r in 0..<batch.count {
            let b = batch.field(f)
            f += width
            if FieldKinds.of(b) == .null { continue }
            checked += 1
            if !test(b) { failed.append(r) }
        }
        states[i].checked += checked
        for r in failed { fail(i, BatchRecord(batch: batch, index: r), checked: false) }
    }

    /// `unique` over a batch: the fingerprints first, then the inserts, each probe's memory
    /// asked for sixteen records ahead (a table of millions of values misses the cache on
    /// every probe; this way the misses overlap).
    private mutating func checkUnique(_ i: Int, _ batch: RowBatch) {
        let c = states[i].column
        let width = batch.columns
        let n = batch.count
        let seen = states[i].seen
        var prints = [UInt64](repeating: 0, count: n)
        var present = 0
        // 0 marks a null (a value whose fingerprint is 0 is told apart by `isNull`).
        var isNull = [Bool](repeating: false, count: n)
        for r in 0..<n {
            let b = batch.field(r * width + c)
            if FieldKinds.of(b) == .null {
                isNull[r] = true
            } else {
                prints[r] = CountTable.fingerprint(padded: b)
                present += 1
            }
        }
        var touched: UInt64 = 0
        for r in 0..<n {
            if r + 16 < n { touched &+= seen.touch(prints[r + 16]) }
            guard !isNull[r] else { continue }
            if !seen.insert(prints[r]) { fail(i, BatchRecord(batch: batch, index: r), checked: false) }
        }
        states[i].checked += Int64(present)
        touchedSum &+= touched
    }

    /// Keeps the prefetching reads of `checkUnique` from being optimised away.
    private var touchedSum: UInt64 = 0

    /// Whether a present value passes rule `i`. `padded`: bytes may be read past the value's
    /// end (a `ByteBlock`'s), for a faster fingerprint.
    @inline(__always)
    private mutating func evaluate(_ i: Int, _ kind: FieldKind, _ b: UnsafeBufferPointer<UInt8>, padded: Bool) -> Bool {
        let fingerprint = { padded ? CountTable.fingerprint(padded: b) : CountTable.fingerprint(b) }
        switch states[i].rule {
        case .notNull, .rowCount, .schema:
            return true
        case .unique:
            return states[i].seen.insert(fingerprint())
        case .range:
            guard kind != .string, kind != .bool, let v = NumberText.double(b), !v.isNaN else { return false }
            return (states[i].min.map { v >= $0 } ?? true) && (states[i].max.map { v <= $0 } ?? true)
        case .allowedValues:
            return states[i].allowed.contains(b, fingerprint: fingerprint())
        case .regex:
            let h = fingerprint()
            if states[i].matching.contains(h) { return true }
            if states[i].notMatching.contains(h) { return false }
            let s = String(decoding: b, as: UTF8.self)
            let matched = states[i].regex?.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
            if states[i].matching.count + states[i].notMatching.count < 65_536 {
                _ = matched ? states[i].matching.insert(h) : states[i].notMatching.insert(h)
            }
            return matched
        case .freshness:
            guard let t = Timestamps.seconds(b) else { return false }
            if t > states[i].newest { states[i].newest = t }
            return true
        }
    }

    private mutating func fail<R: RecordView>(_ i: Int, _ row: R, checked: Bool) {
        if checked { states[i].checked += 1 }
        states[i].failures += 1
        if states[i].samples.count < Self.sampleLimit {
            var values: [String: String?] = [:]
            for (c, name) in columns.enumerated() where c < row.count { values[name] = row.string(c) }
            states[i].samples.append(SampleRow(file: row.file, line: row.line, values: values))
        }
    }

    public func report(profile given: DatasetProfile? = nil) -> ValidationReport {
        let profile = profiler?.profile() ?? given
        let rows = self.rows
        var results: [ExpectationResult] = []
        for (i, e) in suite.expectations.enumerated() {
            let s = states[i]
            var r = ExpectationResult(name: e.name, rule: e.rule, column: e.column, passed: true, checked: s.checked, failures: s.failures, message: nil, samples: s.samples)
            switch e.rule {
            case .rowCount:
                r.checked = rows
                if let lo = e.min, Double(rows) < lo {
                    r.passed = false
                    r.message = "\(rows) rows, at least \(Self.number(lo)) expected"
                } else if let hi = e.max, Double(rows) > hi {
                    r.passed = false
                    r.message = "\(rows) rows, at most \(Self.number(hi)) expected"
                }
            case .schema:
                guard let profile else { break }
                var problems: [String] = []
                for (name, type) in e.columns ?? [] {
                    guard let c = profile.column(name) else { problems.append("\(name) is missing"); continue }
                    if !Self.fits(c.type, type) { problems.append("\(name) is \(c.type.rawValue), not \(type.rawValue)") }
                }
                if e.exact {
                    let expected = Set((e.columns ?? []).map(\.name))
                    for c in profile.columns where !expected.contains(c.name) { problems.append("\(c.name) is not expected") }
                }
                r.checked = Int64(profile.columns.count)
                r.failures = Int64(problems.count)
                if !problems.isEmpty {
                    r.passed = false
                    r.message = problems.joined(separator: "; ")
                }
            default:
                if s.column < 0 {
                    r.passed = false
                    r.message = "no column named \(e.column ?? "")"
                    break
                }
                let allowed = (1 - e.mostly) * Double(s.checked)
                if Double(s.failures) > allowed + 1e-9 {
                    r.passed = false
                    let share = s.checked == 0 ? "" : String(format: " (%.2f%%)", 100 * Double(s.failures) / Double(s.checked))
                    r.message = "\(s.failures) of \(s.checked) values\(share) \(Self.describe(e))" + (e.mostly < 1 ? "; at most \(Int64(allowed)) may" : "")
                }
                if e.rule == .freshness, r.passed, let maxAge = e.maxAge {
                    let reference = e.now ?? now
                    if s.newest == -.infinity {
                        r.passed = false
                        r.message = "no timestamps in \(e.column ?? "")"
                    } else if reference - s.newest > maxAge {
                        r.passed = false
                        let age = reference - s.newest
                        r.message = "the newest value is \(Self.age(age)) old, more than \(Self.age(maxAge))"
                    }
                }
            }
            results.append(r)
        }
        return ValidationReport(passed: results.allSatisfy(\.passed), rows: rows, results: results)
    }

    /// An integer column satisfies `number`.
    static func fits(_ actual: ColumnType, _ expected: ColumnType) -> Bool {
        actual == expected || (expected == .number && actual == .integer)
    }

    static func describe(_ e: Expectation) -> String {
        switch e.rule {
        case .notNull: return "are missing"
        case .unique: return "repeat an earlier value"
        case .range:
            let bounds = [e.min.map { ">= \(number($0))" }, e.max.map { "<= \(number($0))" }].compactMap { $0 }.joined(separator: " and ")
            return "are not numbers \(bounds)"
        case .allowedValues: return "are not among the allowed values"
        case .regex: return "do not match \(e.pattern ?? "")"
        case .freshness: return "are not timestamps"
        case .rowCount, .schema: return ""
        }
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    static func age(_ seconds: Double) -> String {
        if seconds >= 86400 { return String(format: "%.1fd", seconds / 86400) }
        if seconds >= 3600 { return String(format: "%.1fh", seconds / 3600) }
        if seconds >= 60 { return String(format: "%.1fm", seconds / 60) }
        return String(format: "%.0fs", seconds)
    }
}

/// What the validator reads of a record: a parser's `Row`, or a record of a `RowBatch`.
protocol RecordView {
    var count: Int { get }
    var line: Int { get }
    var file: String { get }
    func kind(_ i: Int) -> FieldKind
    func withBytes<T>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T
    func string(_ i: Int) -> String?
}

extension Row: RecordView {}
