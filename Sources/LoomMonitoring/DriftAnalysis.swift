import Foundation
import LoomCore
import LoomData
import Synchronization

/// A column's type for drift, as Evidently infers it from the reference when none is declared.
public enum ColumnKind: String, Sendable, Codable, CaseIterable {
    case numerical, categorical, text
}

/// The drift tests Loom computes, by Evidently's names, each with its default threshold and rule.
public enum DriftMethod: String, Sendable, Codable, CaseIterable {
    case ks
    case chisquare
    case z
    case wasserstein
    case jensenshannon
    case psi
    case klDiv = "kl_div"
    case hellinger
    case tvd
    case anderson
    case cramerVonMises = "cramer_von_mises"

    public var displayName: String {
        switch self {
        case .ks: "K-S p_value"
        case .chisquare: "chi-square p_value"
        case .z: "Z-test p_value"
        case .wasserstein: "Wasserstein distance (normed)"
        case .jensenshannon: "Jensen-Shannon distance"
        case .psi: "PSI"
        case .klDiv: "Kullback-Leibler divergence"
        case .hellinger: "Hellinger distance"
        case .tvd: "Total variation distance"
        case .anderson: "Anderson-Darling p_value"
        case .cramerVonMises: "Cramer-von-Mises p_value"
        }
    }

    public var defaultThreshold: Double {
        switch self {
        case .ks, .chisquare, .z: 0.05
        case .wasserstein, .jensenshannon, .psi, .klDiv, .hellinger, .tvd, .anderson, .cramerVonMises: 0.1
        }
    }

    /// A p-value (drift when small) rather than a distance (drift when large).
    public var isPValue: Bool {
        switch self {
        case .ks, .chisquare, .z, .anderson, .cramerVonMises: true
        default: false
        }
    }

    /// The column types it applies to.
    public var kinds: Set<ColumnKind> {
        switch self {
        case .ks, .wasserstein, .anderson, .cramerVonMises: [.numerical]
        case .chisquare, .z, .tvd: [.categorical]
        case .jensenshannon, .psi, .klDiv, .hellinger: [.numerical, .categorical]
        }
    }

    /// Whether `score` means drift at `threshold` (K-S and Cramér–von Mises: p ≤ threshold;
    /// other p-values: p < threshold; distances: score ≥ threshold), as Evidently decides.
    public func drifted(_ score: Double, threshold: Double) -> Bool {
        switch self {
        case .ks, .cramerVonMises: score <= threshold
        case _ where isPValue: score < threshold
        default: score >= threshold
        }
    }
}

/// What a drift analysis compares and how.
public struct DriftOptions: Sendable {
    /// Dataset drift when at least this share of the tested columns drifted (Evidently: 0.5).
    public var driftShare = 0.5
    /// Per-column method, instead of the default choice.
    public var methods: [String: DriftMethod] = [:]
    /// Per-column threshold, instead of the method's default.
    public var thresholds: [String: Double] = [:]
    /// One method for every numerical (or categorical) column without its own.
    public var numericalMethod: DriftMethod?
    public var categoricalMethod: DriftMethod?
    /// Declared column types, instead of inferring them.
    public var kinds: [String: ColumnKind] = [:]
    /// Only these columns (nil: every column of the reference).
    public var columns: [String]?

    public init() {}
}

/// One column's drift.
public struct ColumnDrift: Sendable, Codable, Equatable {
    public var name: String
    public var type: ColumnKind
    public var method: DriftMethod
    public var methodName: String
    /// The p-value or distance; nil when it is not a number.
    public var score: Double?
    public var threshold: Double
    public var drifted: Bool
    public var referenceRows: Int
    public var currentRows: Int
    public var referenceMissing: Int
    public var currentMissing: Int

    enum CodingKeys: String, CodingKey {
        case name, type, method, score, threshold, drifted
        case methodName = "method_name", referenceRows = "reference_rows", currentRows = "current_rows"
        case referenceMissing = "reference_missing", currentMissing = "current_missing"
    }

    /// Every field always present: a score that is not a number is `null`, not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(type, forKey: .type)
        try c.encode(method, forKey: .method)
        try c.encode(methodName, forKey: .methodName)
        if let score { try c.encode(score, forKey: .score) } else { try c.encodeNil(forKey: .score) }
        try c.encode(threshold, forKey: .threshold)
        try c.encode(drifted, forKey: .drifted)
        try c.encode(referenceRows, forKey: .referenceRows)
        try c.encode(currentRows, forKey: .currentRows)
        try c.encode(referenceMissing, forKey: .referenceMissing)
        try c.encode(currentMissing, forKey: .currentMissing)
    }
}

/// Something about the data worth knowing that is not drift: a column missing, of another
/// type, empty, constant, with new categories or non-finite numbers.
public struct DataFinding: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case missingColumn = "missing_column"
        case newColumn = "new_column"
        case typeChanged = "type_changed"
        case empty
        case allMissing = "all_missing"
        case constant
        case unseenCategories = "unseen_categories"
        case nonFinite = "non_finite"
        case notTested = "not_tested"
    }

    public var column: String
    public var kind: Kind
    public var message: String
}

/// The result of comparing a current table with a reference one.
public struct DriftResult: Sendable, Codable {
    public var columns: [ColumnDrift]
    public var numberOfColumns: Int
    public var numberOfDriftedColumns: Int
    public var shareDrifted: Double
    public var datasetDrifted: Bool
    public var driftShare: Double
    public var referenceRows: Int
    public var currentRows: Int
    public var findings: [DataFinding]
    /// Each tested column's distributions, for plots (not in the JSON result).
    public var distributions: [ColumnDistribution]?

    enum CodingKeys: String, CodingKey {
        case columns, findings
        case numberOfColumns = "number_of_columns", numberOfDriftedColumns = "number_of_drifted_columns"
        case shareDrifted = "share_drifted", datasetDrifted = "dataset_drifted", driftShare = "drift_share"
        case referenceRows = "reference_rows", currentRows = "current_rows"
    }
}

/// Data drift between two tables, with Evidently's default rules (docs/monitoring.md).
public enum DriftAnalysis {
    /// Compares `current` with `reference`. Bad options (an unknown column, a method that does
    /// not apply to a column's type, a threshold that is not a number) are a `LoomError`; odd
    /// data is a finding, never an error. Columns are cleaned, sorted and tested in parallel.
    public static func run(reference: DriftTable, current: DriftTable, options: DriftOptions = DriftOptions()) throws(LoomError) -> DriftResult {
        let names = options.columns ?? reference.names
        for name in names + Array(options.methods.keys) + Array(options.thresholds.keys) + Array(options.kinds.keys) where !reference.names.contains(name) {
            throw LoomError.invalidParameter("column \(name) is not in the reference data")
        }
        guard options.driftShare > 0, options.driftShare <= 1 else { throw LoomError.invalidParameter("drift_share must be in (0, 1]") }
        for (name, t) in options.thresholds where !t.isFinite || t < 0 {
            throw LoomError.invalidParameter("threshold of \(name) must be a number >= 0")
        }
        var findings: [DataFinding] = []
        for name in current.names where !reference.names.contains(name) {
            findings.append(DataFinding(column: name, kind: .newColumn, message: "\(name) is in the current data only; not compared"))
        }
        var jobs: [Job] = []
        for name in names {
            let r = reference.column(name)!
            guard let c = current.column(name) else {
                findings.append(DataFinding(column: name, kind: .missingColumn, message: "\(name) is missing from the current data"))
                continue
            }
            let kind = options.kinds[name] ?? inferKind(r)
            if kind == .text {
                findings.append(DataFinding(column: name, kind: .notTested, message: "\(name) is free text (most values distinct); not tested for drift"))
                continue
            }
            let method = options.methods[name] ?? (kind == .numerical ? options.numericalMethod : options.categoricalMethod)
            if let m = method, !m.kinds.contains(kind) {
                throw LoomError.invalidParameter(
                    "method \(m.rawValue) does not apply to \(kind.rawValue) column \(name) (it takes \(m.kinds.map(\.rawValue).sorted().joined(separator: ", ")) columns)")
            }
            guard let sides = Job.Sides(name, kind, r, c, &findings) else { continue }
            jobs.append(Job(name: name, kind: kind, method: method, threshold: options.thresholds[name], sides: sides))
        }
        let done = Mutex<[Int: Job.Outcome]>([:])
        let work = jobs
        DispatchQueue.concurrentPerform(iterations: work.count) { i in
            let outcome = work[i].compute()
            done.withLock { $0[i] = outcome }
        }
        let outcomes = done.withLock { d in jobs.indices.map { d[$0]! } }
        let columns = outcomes.compactMap(\.drift)
        findings += outcomes.flatMap(\.findings)
        let drifted = columns.filter(\.drifted).count
        let share = columns.isEmpty ? 0 : Double(drifted) / Double(columns.count)
        return DriftResult(
            columns: columns, numberOfColumns: columns.count, numberOfDriftedColumns: drifted, shareDrifted: share,
            datasetDrifted: !columns.isEmpty && share >= options.driftShare, driftShare: options.driftShare,
            referenceRows: reference.rowCount, currentRows: current.rowCount, findings: findings,
            distributions: outcomes.compactMap(\.distribution))
    }

    /// Evidently's `infer_column_type` on the reference: floats are numerical; integers are
    /// categorical up to 10 distinct values; text is free text when more than half its values
    /// are distinct, categorical otherwise.
    public static func inferKind(_ values: DriftTable.Values) -> ColumnKind {
        switch values {
        case .numbers(let column):
            guard column.integral else { return .numerical }
            return Distinct.count(column.sorted) <= 10 ? .categorical : .numerical
        case .texts(let column):
            return Double(column.counts.filter { $0 > 0 }.count) > Double(column.present) * 0.5 ? .text : .categorical
        }
    }

    /// One column's work: its two sides, method and threshold.
    struct Job: Sendable {
        /// The two sides as read: numbers, or text codes into shared levels.
        enum Sides: Sendable {
            case numbers(NumberColumn, NumberColumn)
            /// Counts of shared levels on each side, and each side's missing rows.
            case texts([Int], [Int], levels: [String], missing: (Int, Int))

            /// The sides of a column, with text codes of both sides in one set of levels
            /// (numbers compared with text become their texts); nil when they cannot be compared.
            init?(_ name: String, _ kind: ColumnKind, _ r: DriftTable.Values, _ c: DriftTable.Values, _ findings: inout [DataFinding]) {
                switch (r, c) {
                case (.numbers(let a), .numbers(let b)):
                    self = .numbers(a, b)
                    return
                case _ where kind == .numerical:
                    findings.append(DataFinding(
                        column: name, kind: .typeChanged,
                        message: "\(name) is numerical in the reference but holds text in the current data (or the other way round); not tested"))
                    return nil
                default:
                    break
                }
                var levels: [String] = []
                var index: [String: Int] = [:]
                var totals: [[Int]] = [[], []]
                func add(_ text: String, _ n: Int, side: Int) {
                    let k: Int
                    if let known = index[text] {
                        k = known
                    } else {
                        k = levels.count
                        index[text] = k
                        levels.append(text)
                        totals[0].append(0)
                        totals[1].append(0)
                    }
                    totals[side][k] += n
                }
                func missing(_ values: DriftTable.Values, side: Int) -> Int {
                    switch values {
                    case .numbers(let column):
                        var i = 0
                        while i < column.sorted.count {
                            var j = i
                            while j < column.sorted.count, column.sorted[j] == column.sorted[i] { j += 1 }
                            add(NumberText.text(of: column.sorted[i]), j - i, side: side)
                            i = j
                        }
                        return column.missing + column.infinite
                    case .texts(let column):
                        for (k, text) in column.levels.enumerated() where column.counts[k] > 0 { add(text, column.counts[k], side: side) }
                        return column.missing
                    }
                }
                let m = (missing(r, side: 0), missing(c, side: 1))
                if case .numbers = r {
                    findings.append(DataFinding(column: name, kind: .typeChanged, message: "\(name) holds numbers in the reference and text in the current data; compared as categories"))
                }
                if case .numbers = c {
                    findings.append(DataFinding(column: name, kind: .typeChanged, message: "\(name) holds text in the reference and numbers in the current data; compared as categories"))
                }
                self = .texts(totals[0], totals[1], levels: levels, missing: m)
            }
        }

        struct Outcome: Sendable {
            var drift: ColumnDrift?
            var findings: [DataFinding] = []
            var distribution: ColumnDistribution?
        }

        let name: String
        let kind: ColumnKind
        let method: DriftMethod?
        let threshold: Double?
        let sides: Sides

        func compute() -> Outcome {
            var outcome = Outcome()
            let ref: Sample, cur: Sample
            let missing: (Int, Int)
            var levels: [String] = []
            switch sides {
            case .numbers(let a, let b):
                missing = (a.missing + a.infinite, b.missing + b.infinite)
                if a.infinite + b.infinite > 0 {
                    outcome.findings.append(DataFinding(
                        column: name, kind: .nonFinite,
                        message: "\(name) has \(a.infinite) infinite values in the reference and \(b.infinite) in the current data; left out"))
                }
                ref = .numbers(a.sorted, integral: a.integral)
                cur = .numbers(b.sorted, integral: b.integral)
            case .texts(let ra, let rb, let l, let m):
                levels = l
                missing = m
                ref = .counts(ra)
                cur = .counts(rb)
                let unseen = l.indices.filter { ra[$0] == 0 && rb[$0] > 0 }.map { l[$0] }
                if !unseen.isEmpty {
                    outcome.findings.append(DataFinding(
                        column: name, kind: .unseenCategories,
                        message: "\(name) has \(unseen.count) categories the reference lacks: \(unseen.prefix(5).joined(separator: ", "))\(unseen.count > 5 ? ", ..." : "")"))
                }
            }
            if ref.count == 0 || cur.count == 0 {
                let side = ref.count == 0 ? "reference" : "current"
                outcome.findings.append(DataFinding(column: name, kind: .allMissing, message: "\(name) has no values in the \(side) data; not tested"))
                return outcome
            }
            if case .numbers(let a, _) = ref, a.first == a.last {
                outcome.findings.append(DataFinding(column: name, kind: .constant, message: "\(name) is constant in the reference data"))
            }
            let method = self.method ?? DriftAnalysis.defaultMethod(kind, ref, cur)
            let threshold = self.threshold ?? method.defaultThreshold
            var smallest: Int?
            if case .counts(let a) = ref, case .counts(let b) = cur {
                smallest = levels.indices.filter { a[$0] + b[$0] > 0 }.min { levels[$0].utf8.lexicographicallyPrecedes(levels[$1].utf8) }
            }
            let score = DriftMethods.score(method, kind, ref, cur, smallestCategory: smallest)
            outcome.drift = ColumnDrift(
                name: name, type: kind, method: method, methodName: method.displayName, score: score.isNaN ? nil : score, threshold: threshold,
                drifted: !score.isNaN && method.drifted(score, threshold: threshold), referenceRows: ref.count, currentRows: cur.count,
                referenceMissing: missing.0, currentMissing: missing.1)
            outcome.distribution = ColumnDistribution.of(name, kind, ref, cur, levels)
            return outcome
        }
    }

    /// Evidently's default choice (`_get_default_stattest`).
    static func defaultMethod(_ kind: ColumnKind, _ ref: Sample, _ cur: Sample) -> DriftMethod {
        let values: Int
        switch (ref, cur) {
        case (.numbers(let a, _), .numbers(let b, _)): values = Distinct.count(a, b)
        case (.counts(let a), .counts(let b)): values = zip(a, b).filter { $0 + $1 > 0 }.count
        default: values = 0
        }
        if ref.count <= 1000 {
            if kind == .numerical, values > 5 { return .ks }
            return values > 2 ? .chisquare : .z
        }
        if kind == .numerical, values > 5 { return .wasserstein }
        return .jensenshannon
    }
}

/// Each method's score on two samples.
enum DriftMethods {
    static func score(_ method: DriftMethod, _ kind: ColumnKind, _ r: Sample, _ c: Sample, smallestCategory: Int?) -> Double {
        let numerical = kind == .numerical
        switch method {
        case .ks:
            guard case .numbers(let a, _) = r, case .numbers(let b, _) = c else { return .nan }
            return KolmogorovSmirnov.twoSample(sortedA: a, sortedB: b).pValue
        case .wasserstein:
            guard case .numbers(let a, _) = r, case .numbers(let b, _) = c else { return .nan }
            return DriftStatistics.normedWasserstein(a, b)
        case .anderson:
            guard case .numbers(let a, _) = r, case .numbers(let b, _) = c else { return .nan }
            return AndersonDarling.twoSample(a, b).pValue
        case .cramerVonMises:
            guard case .numbers(let a, _) = r, case .numbers(let b, _) = c else { return .nan }
            return CramerVonMises.twoSample(a, b).pValue
        case .jensenshannon:
            let (p, q) = Binning.shares(r, c, numerical: numerical, fillZeros: false)
            return DriftStatistics.jensenShannon(p, q)
        case .psi:
            let (p, q) = Binning.shares(r, c, numerical: numerical, fillZeros: true)
            return DriftStatistics.psi(p, q)
        case .klDiv:
            let (p, q) = Binning.shares(r, c, numerical: numerical, fillZeros: true)
            return DriftStatistics.kullbackLeibler(p, q)
        case .hellinger:
            return DriftStatistics.hellinger(r, c, numerical: numerical)
        case .tvd:
            let (p, q) = Binning.shares(r, c, numerical: false, fillZeros: false)
            return DriftStatistics.totalVariation(p, q)
        case .chisquare:
            switch (r, c) {
            case (.numbers(let a, _), .numbers(let b, _)):
                let m = MergedCounts(a, b)
                return DriftStatistics.chiSquare(reference: m.reference, current: m.current)
            case (.counts(let a), .counts(let b)):
                return DriftStatistics.chiSquare(reference: a, current: b)
            default:
                return .nan
            }
        case .z:
            switch (r, c) {
            case (.numbers(let a, _), .numbers(let b, _)):
                let m = MergedCounts(a, b)
                let single = m.keys.count == 1
                return DriftStatistics.zTest(
                    referenceSmallest: m.reference[0], referenceTotal: a.count, currentSmallest: m.current[0], currentTotal: b.count, singleSameValue: single)
            case (.counts(let a), .counts(let b)):
                guard let s = smallestCategory else { return .nan }
                let single = zip(a, b).filter { $0 + $1 > 0 }.count == 1 && a[s] > 0 && b[s] > 0
                return DriftStatistics.zTest(
                    referenceSmallest: a[s], referenceTotal: r.count, currentSmallest: b[s], currentTotal: c.count, singleSameValue: single)
            default:
                return .nan
            }
        }
    }
}
