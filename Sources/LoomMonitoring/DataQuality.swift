import Foundation
import LoomCore
import LoomData

/// Azure ML's data quality signal: per column of the current data, the share of rows that are
/// missing, of the wrong type (text where the reference has numbers), or out of the reference's
/// bounds (outside its [min, max] for numbers, outside its category set for categories). A
/// column fails when any rate is above its threshold (Azure ML's default: 0).
public enum DataQuality {
    public struct Thresholds: Sendable, Codable, Equatable {
        public var nullRate = 0.0
        public var typeErrorRate = 0.0
        public var outOfRangeRate = 0.0

        public init(nullRate: Double = 0, typeErrorRate: Double = 0, outOfRangeRate: Double = 0) {
            self.nullRate = nullRate
            self.typeErrorRate = typeErrorRate
            self.outOfRangeRate = outOfRangeRate
        }

        enum CodingKeys: String, CodingKey {
            case nullRate = "null_rate", typeErrorRate = "type_error_rate", outOfRangeRate = "out_of_range_rate"
        }
    }

    public struct Column: Sendable, Codable, Equatable {
        public var name: String
        public var rows: Int
        public var nullRate: Double
        public var typeErrorRate: Double
        public var outOfRangeRate: Double
        /// Which rates are above their thresholds (`null_rate`, `type_error_rate`, `out_of_range_rate`).
        public var violations: [String]
        public var passed: Bool

        public init(name: String, rows: Int, nullRate: Double, typeErrorRate: Double, outOfRangeRate: Double, violations: [String]) {
            self.name = name
            self.rows = rows
            self.nullRate = nullRate
            self.typeErrorRate = typeErrorRate
            self.outOfRangeRate = outOfRangeRate
            self.violations = violations
            self.passed = violations.isEmpty
        }

        enum CodingKeys: String, CodingKey {
            case name, rows, violations, passed
            case nullRate = "null_rate", typeErrorRate = "type_error_rate", outOfRangeRate = "out_of_range_rate"
        }
    }

    public struct Result: Sendable, Codable, Equatable {
        public var columns: [Column]
        public var thresholds: Thresholds
        public var passed: Bool
    }

    /// The rates of every reference column present in `current` (columns missing from it are
    /// the drift result's findings).
    /// `kinds`: declared column types (else inferred from the reference, as for drift): a
    /// categorical column of numbers is out of range outside its set of values, not its bounds.
    public static func run(
        reference: DriftTable, current: DriftTable, thresholds: Thresholds = Thresholds(), columns: [String]? = nil, kinds: [String: ColumnKind] = [:]
    ) -> Result {
        var out: [Column] = []
        for name in columns ?? reference.names {
            guard let r = reference.column(name), let c = current.column(name), current.rowCount > 0 else { continue }
            let rows = current.rowCount
            var nulls = 0, typeErrors = 0, outOfRange = 0
            switch (r, c) {
            case (.numbers(let ref), .numbers(let cur)):
                nulls = cur.missing
                if (kinds[name] ?? DriftAnalysis.inferKind(r)) == .categorical {
                    let known = Set(ref.sorted)
                    outOfRange = cur.infinite + cur.sorted.filter { !known.contains($0) }.count
                } else {
                    outOfRange = cur.infinite + outside(cur.sorted, ref.sorted)
                }
            case (.numbers(let ref), .texts(let cur)):
                // Text where the reference has numbers: a type error unless it reads as a number.
                nulls = cur.missing
                for (k, text) in cur.levels.enumerated() where cur.counts[k] > 0 {
                    guard let v = number(text) else {
                        typeErrors += cur.counts[k]
                        continue
                    }
                    if !v.isFinite || ref.sorted.isEmpty || v < ref.sorted.first! || v > ref.sorted.last! { outOfRange += cur.counts[k] }
                }
            case (.texts(let ref), .texts(let cur)):
                nulls = cur.missing
                let known = Set(ref.levels.indices.filter { ref.counts[$0] > 0 }.map { ref.levels[$0] })
                for (k, text) in cur.levels.enumerated() where cur.counts[k] > 0 && !known.contains(text) { outOfRange += cur.counts[k] }
            case (.texts(let ref), .numbers(let cur)):
                nulls = cur.missing + cur.infinite
                let known = Set(ref.levels.indices.filter { ref.counts[$0] > 0 }.map { ref.levels[$0] })
                outOfRange = cur.sorted.filter { !known.contains(NumberText.text(of: $0)) }.count
            }
            let rates = (Double(nulls) / Double(rows), Double(typeErrors) / Double(rows), Double(outOfRange) / Double(rows))
            var violations: [String] = []
            if rates.0 > thresholds.nullRate { violations.append("null_rate") }
            if rates.1 > thresholds.typeErrorRate { violations.append("type_error_rate") }
            if rates.2 > thresholds.outOfRangeRate { violations.append("out_of_range_rate") }
            out.append(Column(name: name, rows: rows, nullRate: rates.0, typeErrorRate: rates.1, outOfRangeRate: rates.2, violations: violations))
        }
        return Result(columns: out, thresholds: thresholds, passed: out.allSatisfy(\.passed))
    }

    /// Sorted values below the reference's minimum or above its maximum.
    static func outside(_ values: [Double], _ reference: [Double]) -> Int {
        guard let lo = reference.first, let hi = reference.last else { return values.count }
        return Histogram.lowerBound(values, lo) + (values.count - Histogram.upperBound(values, hi))
    }

    static func number(_ text: String) -> Double? {
        var t = text
        return t.withUTF8 { NumberText.parse($0)?.value }
    }
}
