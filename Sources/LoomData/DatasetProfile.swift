import LoomCore

/// The type a column's values share.
public enum ColumnType: String, Sendable, Codable, Hashable {
    case integer, number, boolean, string
    /// Every value is missing.
    case empty
}

/// A summary of a dataset's content: row count, a profile per column and quality findings.
public struct DatasetProfile: Sendable, Codable, Hashable {
    public var rows: Int64
    public var columns: [ColumnProfile]
    public var findings: [QualityFinding]

    public func column(_ name: String) -> ColumnProfile? { columns.first { $0.name == name } }
}

public struct ColumnProfile: Sendable, Codable, Hashable {
    public var name: String
    public var type: ColumnType
    /// Values present.
    public var count: Int64
    /// Values missing.
    public var nulls: Int64
    /// Distinct values present; `distinctApproximate` when estimated (more than
    /// `ColumnProfiler.exactDistinct` of them).
    public var distinct: Int64
    public var distinctApproximate: Bool
    // Numbers (integer, number): over the finite values.
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    /// Sample standard deviation (n - 1), as pandas reports it.
    public var std: Double?
    /// Quantiles 0.05, 0.25, 0.5, 0.75, 0.95 (linear interpolation, as numpy's default); from a
    /// uniform sample of `ColumnProfiler.sampleSize` values when there are more
    /// (`quantilesApproximate`).
    public var quantiles: [Quantile]?
    public var quantilesApproximate: Bool?
    /// Infinite values (numbers only).
    public var nonFinite: Int64?
    // Categories (string, boolean): the most frequent values.
    public var top: [ValueCount]?
    public var minLength: Int?
    public var maxLength: Int?

    enum CodingKeys: String, CodingKey {
        case name, type, count, nulls, distinct, min, max, mean, std, quantiles, top
        case distinctApproximate = "distinct_approximate"
        case quantilesApproximate = "quantiles_approximate"
        case nonFinite = "non_finite"
        case minLength = "min_length"
        case maxLength = "max_length"
    }
}

public struct Quantile: Sendable, Codable, Hashable {
    public var q: Double
    public var value: Double
}

public struct ValueCount: Sendable, Codable, Hashable {
    public var value: String
    public var count: Int64
}

/// Something about the data that a user should know before training on it.
public struct QualityFinding: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable {
        /// No rows at all.
        case noRows = "no_rows"
        /// Every value of a column is missing.
        case allNull = "all_null"
        /// A column holds one value only.
        case constant
        /// Most values of a column are numbers, some are not (kept as a string column).
        case mixedTypes = "mixed_types"
        /// Infinite numbers.
        case nonFinite = "non_finite"
    }
    public var kind: Kind
    public var column: String?
    /// How many values (or rows) it concerns.
    public var count: Int64
    public var message: String
}
