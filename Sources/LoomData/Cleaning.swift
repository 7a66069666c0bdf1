import Foundation
import LoomCore

/// What `clean` does to a table, applied in this order to each row: trim text, cast, impute
/// missing values, drop rows with missing values, drop duplicate rows, drop columns.
public struct CleanPlan: Sendable, Codable, Hashable {
    /// Written as `mean`, `median`, `mode` or `constant:VALUE`.
    public enum Imputation: Sendable, Codable, Hashable {
        case mean, median, mode
        case constant(String)

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            do {
                self = try CleanPlan.imputation(text)
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .mean: try c.encode("mean")
            case .median: try c.encode("median")
            case .mode: try c.encode("mode")
            case .constant(let v): try c.encode("constant:" + v)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case trim, cast, impute
        case dropMissing = "drop_missing"
        case dedupe
        case dropColumns = "drop_columns"
    }

    /// Strip leading and trailing spaces and tabs from every value (a value left empty is missing).
    public var trim = false
    /// Column → type: values that do not convert become missing (counted in the report).
    public var cast: [String: ColumnType] = [:]
    /// Column → how to fill its missing values (statistics from the input's profile).
    public var impute: [String: Imputation] = [:]
    /// Drop rows missing a value in any of these columns (`["*"]`: in any column).
    public var dropMissing: [String] = []
    /// Keep the first of rows equal on these columns (`["*"]`: on all columns).
    public var dedupe: [String] = []
    public var dropColumns: [String] = []

    public init() {}

    /// Whether imputing needs the input's statistics (a first pass over the data).
    public var needsProfile: Bool {
        impute.values.contains { if case .constant = $0 { return false } else { return true } }
    }

    /// `mean`, `median`, `mode` or `constant:VALUE`.
    public static func imputation(_ text: String) throws(LoomError) -> Imputation {
        switch text {
        case "mean": return .mean
        case "median": return .median
        case "mode": return .mode
        default:
            guard text.hasPrefix("constant:") else {
                throw .invalidParameter("Invalid imputation '\(text)': mean, median, mode or constant:VALUE")
            }
            return .constant(String(text.dropFirst("constant:".count)))
        }
    }
}

/// What a `clean` did.
public struct CleanReport: Sendable, Codable, Hashable {
    enum CodingKeys: String, CodingKey {
        case rowsIn = "rows_in", rowsOut = "rows_out", droppedMissing = "dropped_missing"
        case droppedDuplicates = "dropped_duplicates", imputed, castFailures = "cast_failures", columns
    }

    public var rowsIn: Int64 = 0
    public var rowsOut: Int64 = 0
    public var droppedMissing: Int64 = 0
    public var droppedDuplicates: Int64 = 0
    /// Column → values filled.
    public var imputed: [String: Int64] = [:]
    /// Column → values that did not convert and became missing.
    public var castFailures: [String: Int64] = [:]
    public var columns: [String] = []
}

/// Streams a table through a `CleanPlan` into a CSV file (a `RowSink`).
public struct Cleaner: RowSink {
    let plan: CleanPlan
    let output: String?
    let profile: DatasetProfile?
    /// Statistics mode (no output): profiles the values as trimmed and cast, which is what
    /// imputation fills from.
    private var statistics: Profiler?
    private let scratch = Row()
    public private(set) var report = CleanReport()
    private var writer: CSVWriter?
    private var columns: [String] = []
    private var keep: [Int] = []
    private var castTypes: [ColumnType?] = []
    private var fills: [[UInt8]?] = []
    private var missingCheck: [Int] = []
    private var dedupeOn: [Int] = []
    private var seen: Set<UInt64> = []
    private var fields: [[UInt8]?] = []

    /// `profile`: the statistics pass's (`Cleaner.statistics(for:)`), when the plan imputes
    /// with a statistic.
    public init(plan: CleanPlan, output: String?, profile: DatasetProfile?) {
        self.plan = plan
        self.output = output
        self.profile = profile
    }

    /// A first pass for a plan that imputes with statistics: profiles the values after trimming
    /// and casting (so that `--cast age=integer --impute age=median` takes the median of the
    /// integers).
    public static func statistics(for plan: CleanPlan) -> Cleaner {
        var stats = CleanPlan()
        stats.trim = plan.trim
        stats.cast = plan.cast
        var c = Cleaner(plan: stats, output: nil, profile: nil)
        c.statistics = Profiler()
        return c
    }

    /// The profile gathered in statistics mode.
    public var gathered: DatasetProfile? { statistics?.profile() }

    public mutating func begin(columns names: [String]) throws {
        columns = names
        func index(_ c: String, _ option: String) throws -> Int {
            guard let i = names.firstIndex(of: c) else { throw LoomError.invalidParameter("\(option): no column named \(c)") }
            return i
        }
        for c in plan.dropColumns { _ = try index(c, "drop columns") }
        keep = names.indices.filter { !plan.dropColumns.contains(names[$0]) }
        guard !keep.isEmpty else { throw LoomError.invalidParameter("drop columns: no column would be left") }
        castTypes = Array(repeating: nil, count: names.count)
        for (c, t) in plan.cast {
            guard t != .empty else { throw LoomError.invalidParameter("cast \(c): the type must be integer, number, boolean or string") }
            castTypes[try index(c, "cast")] = t
        }
        fills = Array(repeating: nil, count: names.count)
        for (c, how) in plan.impute {
            let i = try index(c, "impute")
            fills[i] = Array(try fill(c, how).utf8)
        }
        missingCheck = plan.dropMissing == ["*"] ? Array(names.indices) : try plan.dropMissing.map { try index($0, "drop missing") }
        dedupeOn = plan.dedupe == ["*"] ? Array(names.indices) : try plan.dedupe.map { try index($0, "dedupe") }
        report.columns = keep.map { names[$0] }
        if statistics != nil {
            try statistics?.begin(columns: names)
        } else if let output {
            writer = try CSVWriter(path: output, columns: report.columns)
        }
        fields = Array(repeating: nil, count: names.count)
    }

    private func fill(_ column: String, _ how: CleanPlan.Imputation) throws -> String {
        if case .constant(let v) = how { return v }
        guard let c = profile?.column(column) else { throw LoomError.invalidParameter("impute \(column): no statistics for it") }
        switch how {
        case .mean:
            guard let m = c.mean else { throw LoomError.invalidParameter("impute \(column) with mean: it is not a number column (\(c.type.rawValue))") }
            return Self.text(m)
        case .median:
            guard let m = c.quantiles?.first(where: { $0.q == 0.5 })?.value else {
                throw LoomError.invalidParameter("impute \(column) with median: it is not a number column (\(c.type.rawValue))")
            }
            return Self.text(m)
        case .mode:
            guard let m = c.top?.first?.value else {
                throw LoomError.invalidParameter("impute \(column) with mode: it has no most frequent value (\(c.type.rawValue) columns with all values distinct have none)")
            }
            return m
        case .constant(let v):
            return v
        }
    }

    static func text(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }

    public mutating func consume(_ row: Row) throws {
        report.rowsIn += 1
        for i in 0..<columns.count {
            var value: [UInt8]? = row.kind(i) == .null ? nil : row.withBytes(i) { Array($0) }
            if plan.trim, let v = value {
                let trimmed = Self.trimmed(v)
                value = trimmed.isEmpty || trimmed.withUnsafeBufferPointer(NumberText.isNullToken) ? nil : trimmed
            }
            if let t = castTypes[i], let v = value {
                value = Self.cast(v, t)
                if value == nil { report.castFailures[columns[i], default: 0] += 1 }
            }
            if value == nil, let f = fills[i] {
                value = f
                report.imputed[columns[i], default: 0] += 1
            }
            fields[i] = value
        }
        if statistics != nil {
            scratch.reset()
            for f in fields {
                if let f { scratch.bytes.append(contentsOf: f) }
                scratch.endField(f == nil ? .null : .text)
            }
            try statistics?.consume(scratch)
            return
        }
        for i in missingCheck where fields[i] == nil {
            report.droppedMissing += 1
            return
        }
        if !dedupeOn.isEmpty {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for i in dedupeOn {
                if let v = fields[i] {
                    for b in v { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
                    h = (h ^ 0x1F) &* 0x100_0000_01B3
                } else {
                    h = (h ^ 0x1E) &* 0x100_0000_01B3
                }
            }
            h ^= h >> 33; h = h &* 0xFF51_AFD7_ED55_8CCD; h ^= h >> 33
            guard seen.insert(h).inserted else {
                report.droppedDuplicates += 1
                return
            }
        }
        try writer?.write(keep.map { fields[$0].map { $0[...] } })
        report.rowsOut += 1
    }

    public mutating func finish() throws {
        try writer?.close()
        writer = nil
    }

    static func trimmed(_ v: [UInt8]) -> [UInt8] {
        var lo = 0, hi = v.count
        while lo < hi, v[lo] == 0x20 || v[lo] == 0x09 { lo += 1 }
        while hi > lo, v[hi - 1] == 0x20 || v[hi - 1] == 0x09 { hi -= 1 }
        return lo == 0 && hi == v.count ? v : Array(v[lo..<hi])
    }

    static let trueWords: Set<String> = ["true", "t", "yes", "y", "1"]
    static let falseWords: Set<String> = ["false", "f", "no", "n", "0"]

    /// The value as text of `type`, or nil when it does not convert.
    static func cast(_ v: [UInt8], _ type: ColumnType) -> [UInt8]? {
        switch type {
        case .string, .empty:
            return v
        case .number:
            let ok = v.withUnsafeBufferPointer { NumberText.double($0) } != nil
            return ok ? v : nil
        case .integer:
            guard let d = v.withUnsafeBufferPointer({ NumberText.double($0) }), d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            return Array(String(Int64(d)).utf8)
        case .boolean:
            let word = String(decoding: v, as: UTF8.self).lowercased()
            if trueWords.contains(word) { return Array("true".utf8) }
            if falseWords.contains(word) { return Array("false".utf8) }
            return nil
        }
    }
}
