import Foundation
import LoomCore
import Synchronization

/// What a field holds, as read.
public enum FieldKind: UInt8, Sendable {
    /// Missing: an empty CSV field, a null-like token (`NA`, `null`, `NaN`, ...), a JSON `null`
    /// or a key absent from a JSON Lines record.
    case null
    /// CSV text, whose type is inferred (a number if it parses as one).
    case text
    /// A JSON string: text that is never read as a number.
    case string
    /// A JSON number.
    case number
    /// A JSON boolean.
    case bool
}

/// One record being read, valid only during the call that receives it: its fields' bytes, one
/// after another, and where each ends.
public final class Row {
    /// The line of the file where the record starts (1-based; the header is line 1 of a CSV).
    public internal(set) var line = 0
    /// The file the record comes from (its path inside the dataset).
    public internal(set) var file = ""
    /// Differs between the rows of different files (one `Row` reads one file), so that a sink
    /// can notice a new file without comparing names.
    var source: Int
    static let sources = Atomic<Int>(0)
    var bytes: [UInt8] = []
    var ends: [Int] = []
    var kinds: [FieldKind] = []

    public init() {
        source = Self.sources.add(1, ordering: .relaxed).newValue
        bytes.reserveCapacity(4096)
    }

    public var count: Int { ends.count }

    public func kind(_ i: Int) -> FieldKind { kinds[i] }

    /// The field's bytes (UTF-8); empty for a null.
    public func withBytes<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let start = i == 0 ? 0 : ends[i - 1]
        return try bytes.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[start..<ends[i]]))
        }
    }

    /// The field as text, nil for a null.
    public func string(_ i: Int) -> String? {
        if kinds[i] == .null { return nil }
        return withBytes(i) { String(decoding: $0, as: UTF8.self) }
    }

    /// The field as a number: nil for a null, for a JSON string or boolean, and for text that is
    /// not a number.
    public func double(_ i: Int) -> Double? {
        switch kinds[i] {
        case .null, .string, .bool: return nil
        case .text, .number: return withBytes(i) { NumberText.double($0) }
        }
    }

    func reset() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        kinds.removeAll(keepingCapacity: true)
    }

    func endField(_ kind: FieldKind) {
        ends.append(bytes.count)
        kinds.append(kind)
    }
}

/// The longest record (or JSON Lines line) the readers hold: past it, the input is refused
/// rather than read into memory whole (a quote never closed makes the rest of a file one field).
public enum RecordLimit {
    public static let bytes = 64 << 20
}

/// Receives the records of a table, in order.
public protocol RowSink {
    /// The columns, before the first record.
    mutating func begin(columns: [String]) throws
    /// A column first seen after `begin` (JSON Lines records need not share their keys); the
    /// records before it lacked it.
    mutating func addColumn(_ name: String) throws
    /// One record, with one field per column known so far.
    mutating func consume(_ row: Row) throws
}

extension RowSink {
    public mutating func addColumn(_ name: String) throws {
        throw LoomError.invalidParameter("column \(name) appears after the first record")
    }
}

/// Reading numbers and missing values from field text.
public enum NumberText {
    /// The tokens read as missing, as pandas does by default.
    static let nullTokenList: [[UInt8]] = ["NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "None", "<NA>", "#N/A"].map { Array($0.utf8) }

    /// Whether CSV text stands for a missing value.
    static func isNullToken(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if b.isEmpty { return true }
        guard b.count <= 4, startsNullToken(b[0]) else { return false }
        var word: UInt64 = 0
        for (i, c) in b.enumerated() { word |= UInt64(c) << (8 * UInt64(i)) }
        return isNullTokenKey(word | UInt64(b.count) << 32)
    }

    /// Every token starts with one of N n - < #.
    @inline(__always)
    static func startsNullToken(_ first: UInt8) -> Bool {
        first == 0x4E || first == 0x6E || first == 0x2D || first == 0x3C || first == 0x23
    }

    /// Whether a text of one to four bytes is a null token, given as its bytes little endian
    /// with its length above them (bits 32 and up).
    @inline(__always)
    static func isNullTokenKey(_ key: UInt64) -> Bool {
        switch key {
        // NA, N/A, n/a, NULL, null, NaN, nan, -NaN, -nan, None, <NA>, #N/A (`nullTokenList`).
        case 0x2_0000_414E, 0x3_0041_2F4E, 0x3_0061_2F6E, 0x4_4C4C_554E, 0x4_6C6C_756E, 0x3_004E_614E,
             0x3_006E_616E, 0x4_4E61_4E2D, 0x4_6E61_6E2D, 0x4_656E_6F4E, 0x4_3E41_4E3C, 0x4_412F_4E23:
            return true
        default:
            return false
        }
    }

    /// The text a number stands for once its column turns out to hold text: integers without a
    /// fraction ("3", not "3.0"), as pandas writes an integer column's values.
    public static func text(of value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// The number the text spells (decimal, with exponent; `inf`, `-inf`, `Infinity`), or nil.
    public static func double(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        parse(b)?.value
    }

    /// 10^e for 0 <= e <= 22 (all exact doubles).
    @inline(__always) static func powerOf10(_ e: Int) -> Double {
        var v = 1.0
        var base = 10.0
        var n = e
        while n > 0 {
            if n & 1 == 1 { v *= base }
            base *= base
            n >>= 1
        }
        return v
    }

    /// The number and whether it was written as an integer (no fraction, no exponent). Decimals
    /// of up to 19 significant digits with a small exponent take Clinger's fast path (exact:
    /// the mantissa and the power of ten are both exact doubles); the rest go through `strtod`.
    /// Text with anything but digits, one sign, one point and one exponent is not a number (so
    /// "0x1p3" or " 12" are text, as pandas reads them).
    public static func parse(_ b: UnsafeBufferPointer<UInt8>) -> (value: Double, integral: Bool)? {
        if let quick = parseShort(b) { return quick }
        return parseGeneral(b)
    }

    /// Eight ASCII digits at `p` as their value, or nil if any byte is not a digit (SWAR:
    /// pairs, then fours, then the eight combined with two multiplications).
    @inline(__always) static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
        let v = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
        guard (v & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030,
            ((v &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030 else { return nil }
        let mask: UInt64 = 0x0000_00FF_0000_00FF
        let high: UInt64 = 100 + (1_000_000 << 32)
        let low: UInt64 = 1 + (10_000 << 32)
        var x = v &- 0x3030_3030_3030_3030
        x = (x &* 10) &+ (x >> 8)
        let a = (x & mask) &* high
        let b = ((x >> 16) & mask) &* low
        return (a &+ b) >> 32
    }

    /// The common case fast: an optional sign, at most 19 digits with at most one point, no
    /// exponent, a value Clinger's fast path computes exactly. Nil: use the general parser.
    @inline(__always) static func parseShort(_ b: UnsafeBufferPointer<UInt8>) -> (value: Double, integral: Bool)? {
        let n = b.count
        guard n > 0, n <= 21, let p = b.baseAddress else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        }
        var mantissa: UInt64 = 0
        let intStart = i
        while i < n, p[i] &- 48 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
            i += 1
        }
        var digits = i - intStart
        var fraction = 0
        var integral = true
        if i < n {
            guard p[i] == UInt8(ascii: "."), digits > 0 else { return nil }
            integral = false
            i += 1
            let fracStart = i
            while i + 8 <= n, let eight = eightDigits(p + i) {
                mantissa = mantissa &* 100_000_000 &+ eight
                i += 8
            }
            while i < n, p[i] &- 48 < 10 {
                mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
                i += 1
            }
            guard i == n else { return nil }
            fraction = i - fracStart
            digits += fraction
        }
        guard digits > 0, digits <= 19, mantissa < (1 << 53), fraction <= 22 else { return nil }
        var v = Double(mantissa)
        if fraction > 0 { v /= powerOf10(fraction) }
        return (negative ? -v : v, integral)
    }

    static func parseGeneral(_ b: UnsafeBufferPointer<UInt8>) -> (value: Double, integral: Bool)? {
        let n = b.count
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+") {
            negative = b[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var significant = 0
        var dropped = 0
        var fraction = 0
        var sawPoint = false
        while i < n {
            let c = b[i]
            if c &- 48 < 10 {
                digits += 1
                if significant < 19 {
                    if mantissa != 0 || c != 48 { significant += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(c &- 48)
                    if sawPoint { fraction += 1 }
                } else if !sawPoint {
                    dropped += 1
                }
            } else if c == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            i += 1
        }
        guard digits > 0 else { return special(b) }
        var exponent = 0
        var sawExponent = false
        if i < n {
            guard b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") else { return nil }
            sawExponent = true
            i += 1
            var expNegative = false
            if i < n, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") {
                expNegative = b[i] == UInt8(ascii: "-")
                i += 1
            }
            let start = i
            while i < n, b[i] &- 48 < 10 {
                if exponent < 100_000 { exponent = exponent * 10 + Int(b[i] &- 48) }
                i += 1
            }
            guard i == n, i > start else { return nil }
            if expNegative { exponent = -exponent }
        }
        let integral = !sawPoint && !sawExponent
        let scale = exponent - fraction + dropped
        if mantissa < (1 << 53), scale >= -22, scale <= 22 {
            var v = Double(mantissa)
            v = scale < 0 ? v / powerOf10(-scale) : v * powerOf10(scale)
            return (negative ? -v : v, integral)
        }
        // Long or far-off numbers: strtod over a NUL-terminated copy on the stack.
        let v = withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { text -> Double? in
            for j in 0..<n { text[j] = CChar(bitPattern: b[j]) }
            text[n] = 0
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(text.baseAddress!, &end)
            guard let end, end - text.baseAddress! == n else { return nil }
            return v
        }
        return v.map { ($0, integral) }
    }

    static func special(_ b: UnsafeBufferPointer<UInt8>) -> (value: Double, integral: Bool)? {
        // inf, Inf, Infinity, each optionally signed.
        guard b.count >= 3, b.count <= 9, b[0] == UInt8(ascii: "i") || b[0] == UInt8(ascii: "I") || b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+"),
            let v = infinities[Array(b)] else { return nil }
        return (v, false)
    }

    static let infinities: [[UInt8]: Double] = [
        "inf": .infinity, "+inf": .infinity, "-inf": -.infinity, "Inf": .infinity, "-Inf": -.infinity,
        "Infinity": .infinity, "-Infinity": -.infinity, "+Infinity": .infinity,
    ].reduce(into: [:]) { $0[Array($1.key.utf8)] = $1.value }
}

