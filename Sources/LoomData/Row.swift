import LoomCore

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
    var bytes: [UInt8] = []
    var ends: [Int] = []
    var kinds: [FieldKind] = []

    public init() {
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
    static let nullTokens: Set<[UInt8]> = Set(["NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "None", "<NA>", "#N/A"].map { Array($0.utf8) })

    /// Whether unquoted CSV text stands for a missing value.
    static func isNullToken(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if b.isEmpty { return true }
        guard b.count <= 4 else { return false }
        return nullTokens.contains(Array(b))
    }

    /// The number the text spells (decimal, with exponent; `inf`, `-inf`, `Infinity`), or nil.
    public static func double(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let first = b.first else { return nil }
        // Fast path for plain integers of up to 15 digits.
        var i = 0
        var negative = false
        if first == UInt8(ascii: "-") || first == UInt8(ascii: "+") { negative = first == UInt8(ascii: "-"); i = 1 }
        if b.count - i > 0, b.count - i <= 15 {
            var v: Int64 = 0
            var j = i
            while j < b.count, b[j] &- 48 < 10 { v = v &* 10 &+ Int64(b[j] &- 48); j += 1 }
            if j == b.count { return Double(negative ? -v : v) }
        }
        // Anything else through strtod's grammar, but only over characters a number may hold
        // (so that "0x1p3" or " 12" are text, as pandas reads them).
        var sawDigit = false
        for c in b {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default:
                return special(b)
            }
        }
        guard sawDigit else { return nil }
        return b.withMemoryRebound(to: CChar.self) { cs -> Double? in
            var text = [CChar](cs)
            text.append(0)
            return text.withUnsafeBufferPointer { p -> Double? in
                var end: UnsafeMutablePointer<CChar>?
                let v = strtod(p.baseAddress!, &end)
                guard let end, end - UnsafeMutablePointer(mutating: p.baseAddress!) == cs.count else { return nil }
                return v
            }
        }
    }

    static let infinities: [[UInt8]: Double] = [
        "inf": .infinity, "+inf": .infinity, "-inf": -.infinity, "Inf": .infinity, "-Inf": -.infinity,
        "Infinity": .infinity, "-Infinity": -.infinity, "+Infinity": .infinity,
    ].reduce(into: [:]) { $0[Array($1.key.utf8)] = $1.value }

    static func special(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        guard b.count <= 9 else { return nil }
        return infinities[Array(b)]
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
