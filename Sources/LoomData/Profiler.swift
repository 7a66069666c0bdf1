import Foundation
import LoomCore

/// Profiles a table as it streams by (a `RowSink`): memory per column is bounded by
/// `ColumnProfiler.sampleSize` numbers and `ColumnProfiler.exactDistinct` distinct values,
/// whatever the number of rows. Deterministic: the same content gives the same profile.
public struct Profiler: RowSink {
    public private(set) var rows: Int64 = 0
    private var columns: [ColumnProfiler] = []

    public init() {}

    init(rows: Int64, columns: [ColumnProfiler]) {
        self.rows = rows
        self.columns = columns
    }

    public mutating func begin(columns names: [String]) throws {
        columns = names.map { ColumnProfiler(name: $0) }
    }

    public mutating func addColumn(_ name: String) throws {
        var c = ColumnProfiler(name: name)
        c.nulls = rows
        columns.append(c)
    }

    public mutating func consume(_ row: Row) throws {
        rows += 1
        // One access to the row's storage for all columns.
        row.bytes.withUnsafeBufferPointer { bytes in
            row.ends.withUnsafeBufferPointer { ends in
                row.kinds.withUnsafeBufferPointer { kinds in
                    var start = 0
                    for i in 0..<columns.count {
                        let end = ends[i]
                        columns[i].add(kinds[i], UnsafeBufferPointer(rebasing: bytes[start..<end])) { (row.line, row.file) }
                        start = end
                    }
                }
            }
        }
    }

    public func profile() -> DatasetProfile {
        var findings: [QualityFinding] = []
        if rows == 0 { findings.append(.init(kind: .noRows, column: nil, count: 0, message: "The dataset has no rows.")) }
        let profiles = columns.map { $0.profile(findings: &findings) }
        return DatasetProfile(rows: rows, columns: profiles, findings: findings)
    }
}

/// The running summary of one column.
struct ColumnProfiler {
    static let sampleSize = 32_768
    static let exactDistinct = 10_000
    static let quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]

    let name: String
    var nulls: Int64 = 0
    var present: Int64 = 0
    var numbers: Int64 = 0
    var integers: Int64 = 0
    var booleans: Int64 = 0
    var nonFinite: Int64 = 0
    /// Finite numbers seen.
    var finite: Int64 = 0
    /// Mean and sum of squared deviations of the first `merged` finite numbers; the rest (fewer
    /// than `chunk`) are sums of differences from the chunk's first value, merged in by Chan's
    /// formula every `chunk` values. No division per value; the shift being one of the chunk's
    /// values bounds the rounding error of the chunk's sum of squares by (chunk + 1) ulps of it.
    var merged: Int64 = 0
    var mean = 0.0
    var m2 = 0.0
    var chunkShift = 0.0
    var chunkSum = 0.0
    var chunkSquares = 0.0
    var chunkCount = 0
    static let chunk = 4096
    var min = Double.infinity
    var max = -Double.infinity
    var sample: [Double] = []
    var rng = SplitMix64(seed: 0x5EED_10AD)
    /// Algorithm L's state: the weight, and the count of finite values at which the next value is kept.
    var w = 1.0
    var nextKept: Int64 = 0
    var counts = CountTable(limit: exactDistinct)
    var hll = HyperLogLog()
    var minLength = Int.max
    var maxLength = 0
    var firstText: (value: String, line: Int, file: String)?

    init(name: String) { self.name = name }

    /// `at`: where the value is (asked only for the first text value of a column).
    mutating func add(_ kind: FieldKind, _ b: UnsafeBufferPointer<UInt8>, at: () -> (line: Int, file: String)) {
        if kind == .null { nulls += 1; return }
        present += 1
        let h = CountTable.fingerprint(b)
        hll.add(fingerprint: h)
        // Past the exact limit only columns holding text keep counting (for their top values):
        // the count table of a column of distinct numbers would only cost cache misses.
        if !counts.overflowed || present - 1 > numbers + booleans { counts.add(b, fingerprint: h) }
        switch kind {
        case .bool:
            booleans += 1
        case .text, .number:
            if let (v, integral) = NumberText.parse(b) {
                addNumber(v, integral: integral)
            } else if kind == .text, Self.isBoolText(b) {
                booleans += 1
            } else {
                text(b, at)
            }
        case .string:
            text(b, at)
        case .null:
            break
        }
    }

    private mutating func text(_ b: UnsafeBufferPointer<UInt8>, _ at: () -> (line: Int, file: String)) {
        // Characters, not bytes (continuation bytes do not start one).
        var length = 0
        for c in b where c & 0xC0 != 0x80 { length += 1 }
        minLength = Swift.min(minLength, length)
        maxLength = Swift.max(maxLength, length)
        if firstText == nil {
            let (line, file) = at()
            firstText = (String(decoding: b, as: UTF8.self), line, file)
        }
    }

    private mutating func addNumber(_ v: Double, integral: Bool) {
        numbers += 1
        if integral { integers += 1 }
        guard v.isFinite else { nonFinite += 1; return }
        finite += 1
        if chunkCount == 0 { chunkShift = v }
        let d = v - chunkShift
        chunkSum += d
        chunkSquares += d * d
        chunkCount += 1
        if chunkCount == Self.chunk {
            (merged, mean, m2) = moments()
            chunkCount = 0
            chunkSum = 0
            chunkSquares = 0
        }
        if v < min { min = v }
        if v > max { max = v }
        // Reservoir sampling with a fixed seed (Li's Algorithm L: it draws random numbers only
        // for the values it keeps, so a long column costs a comparison per value).
        if sample.count < Self.sampleSize {
            sample.append(v)
            if sample.count == Self.sampleSize {
                w = Foundation.exp(Foundation.log(uniform()) / Double(Self.sampleSize))
                nextKept = finite + skip()
            }
        } else if finite == nextKept {
            sample[Int(rng.next() % UInt64(Self.sampleSize))] = v
            w *= Foundation.exp(Foundation.log(uniform()) / Double(Self.sampleSize))
            nextKept += skip()
        }
    }

    /// Count, mean and sum of squared deviations of every finite number so far.
    func moments() -> (count: Int64, mean: Double, m2: Double) {
        guard chunkCount > 0 else { return (merged, mean, m2) }
        let nb = Double(chunkCount)
        let chunkMean = chunkShift + chunkSum / nb
        let chunkM2 = Swift.max(0, chunkSquares - chunkSum * chunkSum / nb)
        let na = Double(merged)
        let n = na + nb
        let delta = chunkMean - mean
        return (merged + Int64(chunkCount), mean + delta * nb / n, m2 + chunkM2 + delta * delta * na * nb / n)
    }

    /// `true` or `false` in any case.
    /// A uniform double in (0, 1).
    private mutating func uniform() -> Double {
        (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
    }

    /// How many values to pass over before keeping one, plus one.
    private mutating func skip() -> Int64 {
        let s = Foundation.log(uniform()) / Foundation.log1p(-w)
        return s.isFinite && s < 1e15 ? Int64(s) + 1 : Int64(1e15)
    }

    static func isBoolText(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        func matches(_ word: StaticString) -> Bool {
            guard b.count == word.utf8CodeUnitCount else { return false }
            let w = word.utf8Start
            for i in 0..<b.count where b[i] | 0x20 != w[i] { return false }
            return true
        }
        return matches("true") || matches("false")
    }

    func profile(findings: inout [QualityFinding]) -> ColumnProfile {
        let type: ColumnType
        if present == 0 {
            type = .empty
        } else if numbers == present {
            type = integers == numbers ? .integer : .number
        } else if booleans == present {
            type = .boolean
        } else {
            type = .string
        }
        let distinct = counts.overflowed ? hll.estimate() : Int64(counts.count)
        var p = ColumnProfile(
            name: name, type: type, count: present, nulls: nulls, distinct: distinct, distinctApproximate: counts.overflowed)
        switch type {
        case .integer, .number:
            if finite > 0 {
                p.min = min
                p.max = max
                let (count, mean, m2) = moments()
                p.mean = mean
                p.std = count > 1 ? (m2 / Double(count - 1)).squareRoot() : nil
                let sorted = sample.sorted()
                p.quantiles = Self.quantiles.map { Quantile(q: $0, value: Self.quantile(sorted, $0)) }
                p.quantilesApproximate = finite > Int64(Self.sampleSize)
            }
            p.nonFinite = nonFinite
            // Integer codes that repeat (categories) have a mode too.
            if type == .integer, !counts.overflowed, counts.count < Int(present) { p.top = topValues() }
        case .string, .boolean:
            p.top = topValues()
            if type == .string, minLength != Int.max {
                p.minLength = minLength
                p.maxLength = maxLength
            }
        case .empty:
            break
        }
        if present == 0, nulls > 0 {
            findings.append(.init(kind: .allNull, column: name, count: nulls, message: "Every value of \(name) is missing."))
        } else if distinct == 1, present > 1 {
            findings.append(.init(kind: .constant, column: name, count: present, message: "\(name) holds one value only."))
        }
        if type == .string, numbers > 0, numbers * 10 >= present * 9 {
            let notNumbers = present - numbers
            var message = "\(notNumbers) of \(present) values of \(name) are not numbers, so it is read as text"
            if let t = firstText { message += " (e.g. \"\(t.value.prefix(40))\" at \(t.file) line \(t.line))" }
            findings.append(.init(kind: .mixedTypes, column: name, count: notNumbers, message: message + "."))
        }
        if nonFinite > 0, type == .integer || type == .number {
            findings.append(.init(kind: .nonFinite, column: name, count: nonFinite, message: "\(name) holds \(nonFinite) infinite values."))
        }
        return p
    }

    func topValues() -> [ValueCount] {
        counts.top(10).map { ValueCount(value: String(decoding: $0.value, as: UTF8.self), count: $0.count) }
    }

    /// numpy's default (linear) quantile of sorted values.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard sorted.count > 1 else { return sorted.first ?? .nan }
        let h = Double(sorted.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = Swift.min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }
}

/// A small, seedable pseudo-random generator (SplitMix64), so that profiles and splits repeat.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// HyperLogLog with 2^12 registers (about 1.6% standard error), over a fixed 64-bit hash.
struct HyperLogLog {
    static let bits = 12
    var registers = [UInt8](repeating: 0, count: 1 << 12)

    /// `h`: `CountTable.fingerprint` of the value.
    mutating func add(fingerprint h: UInt64) {
        let index = Int(h >> UInt64(64 - Self.bits))
        let rank = UInt8(Swift.min((h << UInt64(Self.bits)).leadingZeroBitCount + 1, 64 - Self.bits + 1))
        if rank > registers[index] { registers[index] = rank }
    }

    func estimate() -> Int64 {
        let m = Double(registers.count)
        var sum = 0.0
        var zeros = 0
        for r in registers {
            sum += 1 / Double(UInt64(1) << UInt64(r))
            if r == 0 { zeros += 1 }
        }
        var e = 0.7213 / (1 + 1.079 / m) * m * m / sum
        if e <= 2.5 * m, zeros > 0 { e = m * log(m / Double(zeros)) }
        return Int64(e.rounded())
    }
}
