import Foundation
import LoomCore
import Yams

/// A suite of declarative data expectations, read from YAML:
///
/// ```yaml
/// expectations:
///   - rule: not_null
///     column: id
///   - rule: unique
///     column: id
///   - rule: range
///     column: age
///     min: 0
///     max: 120
///     mostly: 0.99          # at most 1% of the checked values may fail
///   - rule: allowed_values
///     column: country
///     values: [NO, SE, DK]
///   - rule: regex
///     column: email
///     pattern: '^[^@ ]+@[^@ ]+$'
///   - rule: row_count
///     min: 1000
///   - rule: schema
///     columns: {id: integer, age: number, country: string}
///     exact: false          # true: no other columns either
///   - rule: freshness
///     column: updated_at
///     max_age: 24h          # s, m, h, d
/// ```
public struct ExpectationSuite: Sendable, Hashable {
    public var expectations: [Expectation]

    public init(expectations: [Expectation]) {
        self.expectations = expectations
    }

    /// YAML 1.2's core schema for booleans (only true and false: `NO` is Norway's code, not
    /// false), and timestamps left as text (read by `Timestamps`).
    static let resolver: Resolver = {
        let strict = (try? Resolver.default.replacing(.bool, with: "^(?:true|True|TRUE|false|False|FALSE)$")) ?? .default
        return strict.removing(.timestamp)
    }()

    /// Parses and checks a suite: unknown rules or keys, missing or ill-typed parameters and
    /// patterns that do not compile are errors naming the expectation.
    public static func parse(yaml text: String) throws(LoomError) -> ExpectationSuite {
        let root: Any?
        do {
            root = try Yams.load(yaml: text, Self.resolver)
        } catch {
            throw .invalidParameter("The expectations are not valid YAML: \(error)")
        }
        guard let map = root as? [String: Any], let list = map["expectations"] as? [Any] else {
            throw .invalidParameter("The expectations file needs a list under 'expectations:'")
        }
        if let extra = map.keys.first(where: { $0 != "expectations" }) {
            throw .invalidParameter("Unknown key '\(extra)' at the top of the expectations file")
        }
        guard !list.isEmpty else { throw .invalidParameter("The expectations list is empty") }
        var out: [Expectation] = []
        for (i, item) in list.enumerated() {
            guard let fields = item as? [String: Any] else {
                throw .invalidParameter("Expectation \(i + 1) is not a mapping of keys to values")
            }
            out.append(try Expectation(fields, index: i + 1))
        }
        return ExpectationSuite(expectations: out)
    }
}

public struct Expectation: Sendable, Hashable {
    public enum Rule: String, Sendable, Codable, Hashable, CaseIterable {
        case notNull = "not_null"
        case unique
        case range
        case allowedValues = "allowed_values"
        case regex
        case rowCount = "row_count"
        case schema
        case freshness

        var needsColumn: Bool { self != .rowCount && self != .schema }
        var keys: Set<String> {
            switch self {
            case .notNull, .unique: return []
            case .range: return ["min", "max"]
            case .allowedValues: return ["values"]
            case .regex: return ["pattern"]
            case .rowCount: return ["min", "max"]
            case .schema: return ["columns", "exact"]
            case .freshness: return ["max_age", "now"]
            }
        }
    }

    public var rule: Rule
    public var column: String?
    /// A label for reports (default: the rule and column).
    public var name: String
    /// The share of checked values that must pass (1 unless given).
    public var mostly: Double
    public var min: Double?
    public var max: Double?
    public var values: [String]?
    public var pattern: String?
    public var columns: [(name: String, type: ColumnType)]?
    public var exact: Bool
    /// Freshness: the newest value must be at most this many seconds before `now`.
    public var maxAge: Double?
    /// Freshness: the reference time (seconds since the epoch; default: when the check runs).
    public var now: Double?

    public static func == (a: Expectation, b: Expectation) -> Bool { a.name == b.name && a.rule == b.rule && a.column == b.column }
    public func hash(into h: inout Hasher) { h.combine(name) }

    init(_ f: [String: Any], index: Int) throws(LoomError) {
        guard let ruleName = f["rule"] as? String else {
            throw .invalidParameter("Expectation \(index) has no 'rule' (one of \(Rule.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let rule = Rule(rawValue: ruleName) else {
            throw .invalidParameter("Expectation \(index): unknown rule '\(ruleName)' (one of \(Rule.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let here = "Expectation \(index) (\(ruleName))"
        let allowed = rule.keys.union(["rule", "column", "name", "mostly"])
        if let extra = f.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalidParameter("\(here): unknown key '\(extra)'")
        }
        self.rule = rule
        column = try Self.string(f["column"], "\(here): 'column'")
        if rule.needsColumn, column == nil { throw .invalidParameter("\(here) needs a 'column'") }
        if !rule.needsColumn, column != nil { throw .invalidParameter("\(here) applies to the whole dataset: it takes no 'column'") }
        name = try Self.string(f["name"], "\(here): 'name'") ?? (column.map { "\(ruleName)(\($0))" } ?? ruleName)
        mostly = try Self.number(f["mostly"], "\(here): 'mostly'") ?? 1
        guard mostly > 0, mostly <= 1 else { throw .invalidParameter("\(here): 'mostly' must be above 0 and at most 1") }
        min = try Self.number(f["min"], "\(here): 'min'")
        max = try Self.number(f["max"], "\(here): 'max'")
        exact = (f["exact"] as? Bool) ?? false
        if let v = f["exact"], !(v is Bool) { throw .invalidParameter("\(here): 'exact' must be true or false") }
        switch rule {
        case .range, .rowCount:
            guard min != nil || max != nil else { throw .invalidParameter("\(here) needs 'min', 'max' or both") }
            if let lo = min, let hi = max, lo > hi { throw .invalidParameter("\(here): 'min' is above 'max'") }
        case .allowedValues:
            guard let list = f["values"] as? [Any], !list.isEmpty else { throw .invalidParameter("\(here) needs a non-empty list of 'values'") }
            values = list.map(Self.text)
        case .regex:
            guard let p = f["pattern"] as? String else { throw .invalidParameter("\(here) needs a 'pattern'") }
            do { _ = try NSRegularExpression(pattern: p) } catch { throw .invalidParameter("\(here): the pattern does not compile: \(p)") }
            pattern = p
        case .schema:
            guard let map = f["columns"] as? [String: Any], !map.isEmpty else {
                throw .invalidParameter("\(here) needs 'columns': a mapping of column names to types")
            }
            var cols: [(String, ColumnType)] = []
            for key in map.keys.sorted() {
                guard let t = map[key] as? String, let type = ColumnType(rawValue: t) else {
                    throw .invalidParameter("\(here): the type of \(key) must be one of integer, number, boolean, string, empty")
                }
                cols.append((key, type))
            }
            columns = cols
        case .freshness:
            guard let raw = f["max_age"] else { throw .invalidParameter("\(here) needs 'max_age' (e.g. 30m, 24h, 7d)") }
            guard let age = Self.duration(Self.text(raw)) else {
                throw .invalidParameter("\(here): 'max_age' must be a number with s, m, h or d (e.g. 24h)")
            }
            maxAge = age
            if let raw = f["now"] {
                guard let t = Timestamps.seconds(Self.text(raw)) else { throw .invalidParameter("\(here): 'now' is not a timestamp") }
                now = t
            }
        case .notNull, .unique:
            break
        }
    }

    static func string(_ v: Any?, _ what: String) throws(LoomError) -> String? {
        guard let v else { return nil }
        guard let s = v as? String, !s.isEmpty else { throw .invalidParameter("\(what) must be text") }
        return s
    }

    static func number(_ v: Any?, _ what: String) throws(LoomError) -> Double? {
        guard let v else { return nil }
        if let i = v as? Int { return Double(i) }
        if let d = v as? Double { return d }
        throw .invalidParameter("\(what) must be a number")
    }

    /// A YAML scalar as the text a data file would hold (`NO` stays `NO`, not false).
    static func text(_ v: Any) -> String {
        switch v {
        case let s as String: return s
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let d as Double: return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        default: return "\(v)"
        }
    }

    /// `90s`, `30m`, `24h`, `7d` (or a bare number of seconds) in seconds.
    static func duration(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let last = text.last else { return nil }
        if let unit = units[last], let n = Double(text.dropLast()), n >= 0 { return n * unit }
        if let n = Double(text), n >= 0 { return n }
        return nil
    }
}

/// Reading timestamps: ISO 8601 dates and date-times (`2026-11-25`, `2026-11-25T10:30:00Z`,
/// `2026-11-25 10:30:00.5+01:00`; no zone means UTC) and numbers since the epoch (seconds, or
/// milliseconds when above 10^11, microseconds above 10^14).
public enum Timestamps {
    public static func seconds(_ text: String) -> Double? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { seconds(UnsafeBufferPointer($0)) }
    }

    public static func seconds(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        if let n = NumberText.double(b), n.isFinite {
            let a = abs(n)
            return a > 1e14 ? n / 1e6 : a > 1e11 ? n / 1e3 : n
        }
        // YYYY-MM-DD
        guard b.count >= 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                let d = Int(b[i]) - 48
                guard d >= 0, d <= 9 else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
            (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = Double(daysFromCivil(year, month, day)) * 86400
        var i = 10
        if i == b.count { return seconds }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") || b[i] == UInt8(ascii: "t") else { return nil }
        guard let hour = digits(i + 1, 2), b.count > i + 3, b[i + 3] == UInt8(ascii: ":"), let minute = digits(i + 4, 2),
            hour < 24, minute < 60 else { return nil }
        seconds += Double(hour * 3600 + minute * 60)
        i += 6
        if i < b.count, b[i] == UInt8(ascii: ":") {
            guard let second = digits(i + 1, 2), second <= 60 else { return nil }
            seconds += Double(second)
            i += 3
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
                var scale = 0.1
                i += 1
                let start = i
                while i < b.count, b[i] >= 48, b[i] <= 57 {
                    seconds += Double(b[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
                guard i > start else { return nil }
            }
        }
        if i == b.count { return seconds }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") { return i + 1 == b.count ? seconds : nil }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = digits(i + 1, 2) else { return nil }
        var om = 0
        if b.count == i + 6, b[i + 3] == UInt8(ascii: ":"), let m = digits(i + 4, 2) {
            om = m
        } else if b.count == i + 5, let m = digits(i + 3, 2) {
            om = m
        } else if b.count != i + 3 {
            return nil
        }
        let offset = Double(oh * 3600 + om * 60)
        return b[i] == UInt8(ascii: "+") ? seconds - offset : seconds + offset
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
