import Foundation
import LoomCore

/// Bodies of the hottest MLflow calls (`log-metric`, `log-batch`), read straight from the
/// request's bytes by a small forward-only reader: several times cheaper than building a JSON
/// tree or going through `Decodable`.
///
/// The reader accepts only plain, well-formed input (no escapes in strings, numbers in JSON's
/// grammar, the expected types). On anything else it returns `nil` and the handler uses the
/// general parser (``JSONBody``), which accepts every valid spelling and words the error, so
/// the two paths always agree on what a body means.
enum FastBodies {
    struct MetricBody: Equatable {
        var runID: String?
        var key: String
        var value: Double
        var timestamp: Int64
        var step: Int64?
        var modelID: String?
        var datasetName: String?
        var datasetDigest: String?

        var metric: Metric {
            Metric(key: key, value: value, timestamp: timestamp, step: step ?? 0,
                   modelID: modelID, datasetName: datasetName, datasetDigest: datasetDigest)
        }
    }

    struct KeyValue: Equatable {
        var key: String
        var value: String
    }

    struct BatchBody: Equatable {
        var runID: String?
        var metrics: [MetricBody] = []
        var params: [KeyValue] = []
        var tags: [KeyValue] = []
    }

    /// A `log-metric` body, or nil when it is not plain enough for the fast path.
    static func metric(_ data: Data) -> MetricBody? {
        data.withUnsafeBytes { metric($0) }
    }

    /// A `log-metric` body from its bytes, or nil when it is not plain enough for the fast path.
    static func metric(_ raw: UnsafeRawBufferPointer) -> MetricBody? {
        var reader = HotJSONReader(raw)
        var ids = RunIDs()
        guard let m = reader.metric(extra: { r, key in ids.read(&r, key) }), reader.atEnd else { return nil }
        guard let runID = ids.runID else { return nil }
        var body = m
        body.runID = runID
        return body
    }

    /// A `log-batch` body, or nil when it is not plain enough for the fast path.
    static func batch(_ data: Data) -> BatchBody? {
        data.withUnsafeBytes { batch($0) }
    }

    /// A `log-batch` body from its bytes, or nil when it is not plain enough for the fast path.
    static func batch(_ raw: UnsafeRawBufferPointer) -> BatchBody? {
        var reader = HotJSONReader(raw)
        var ids = RunIDs()
        var body = BatchBody()
        var seen = SeenMembers()
        let ok = reader.object { r, key in
            switch key {
            case "metrics":
                guard seen.first(0) else { return false }
                var list: [FastBodies.MetricBody] = []
                let ok = r.nullableArray { r in
                    guard let m = r.metric(extra: { r, _ in r.skipValue() }) else { return false }
                    list.append(m)
                    return true
                }
                body.metrics = list
                return ok
            case "params", "tags":
                let params: Bool
                if case "params" = key { params = true } else { params = false }
                guard seen.first(params ? 1 : 2) else { return false }
                var list: [KeyValue] = []
                let ok = r.nullableArray { r in
                    guard let kv = r.keyValue() else { return false }
                    list.append(kv)
                    return true
                }
                if params { body.params = list } else { body.tags = list }
                return ok
            default:
                return ids.read(&r, key)
            }
        }
        guard ok, reader.atEnd, let runID = ids.runID else { return nil }
        body.runID = runID
        return body
    }

    /// `run_id` or its old name `run_uuid`, as ``MLflowController/runID(_:)`` picks them.
    private struct RunIDs {
        var runID_: String?
        var runUUID: String?
        var seen = SeenMembers()
        var runID: String? {
            if let id = runID_, !id.isEmpty { return id }
            if let id = runUUID, !id.isEmpty { return id }
            return nil
        }

        /// Reads the value of `key` if it is a run id; skips any other member.
        mutating func read(_ r: inout HotJSONReader, _ key: JSONName) -> Bool {
            switch key {
            case "run_id": return seen.first(0) && r.optionalString(into: &runID_)
            case "run_uuid": return seen.first(1) && r.optionalString(into: &runUUID)
            default: return r.skipValue()
            }
        }
    }
}

/// A forward-only reader over a JSON document's UTF-8 bytes. Every method returns `false` or
/// `nil` on anything it does not handle, leaving the decision to the general parser.
struct HotJSONReader {
    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Only whitespace is left.
    var atEnd: Bool {
        mutating get {
            skipSpace()
            return i == bytes.count
        }
    }

    private mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private mutating func peek() -> UInt8? {
        skipSpace()
        return i < bytes.count ? bytes[i] : nil
    }

    private mutating func consume(_ c: UInt8) -> Bool {
        guard peek() == c else { return false }
        i += 1
        return true
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        skipSpace()
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    /// `{ "key": value, ... }`: `member` reads each value.
    mutating func object(_ member: (inout HotJSONReader, JSONName) -> Bool) -> Bool {
        guard depth < 16, consume(0x7B) else { return false }
        depth += 1
        defer { depth -= 1 }
        if consume(0x7D) { return true }
        repeat {
            guard let key = name(), consume(0x3A), member(&self, key) else { return false }
        } while consume(0x2C)
        return consume(0x7D)
    }

    /// A member name: a string without escapes or control characters, as valid UTF-8, left as
    /// bytes (no `String` is made for names the reader only compares).
    private mutating func name() -> JSONName? {
        guard let (text, ascii) = rawString(), ascii || String(validating: text, as: UTF8.self) != nil else { return nil }
        return JSONName(bytes: text)
    }

    /// The bytes of a string without escapes or control characters (not yet checked as UTF-8),
    /// and whether they are all ASCII.
    private mutating func rawString() -> (text: UnsafeRawBufferPointer, ascii: Bool)? {
        guard consume(0x22) else { return nil }
        let start = i
        var ascii = true
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 {
                let text = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
                i += 1
                return (text, ascii)
            }
            if c == 0x5C || c < 0x20 { return nil }
            if c >= 0x80 { ascii = false }
            i += 1
        }
        return nil
    }

    /// `[ value, ... ]` or `null`: `element` reads each value.
    mutating func nullableArray(_ element: (inout HotJSONReader) -> Bool) -> Bool {
        if literal("null") { return true }
        guard depth < 16, consume(0x5B) else { return false }
        depth += 1
        defer { depth -= 1 }
        if consume(0x5D) { return true }
        repeat {
            guard element(&self) else { return false }
        } while consume(0x2C)
        return consume(0x5D)
    }

    /// A string without escapes or control characters, as valid UTF-8.
    mutating func string() -> String? {
        guard let (text, ascii) = rawString() else { return nil }
        // ASCII is valid UTF-8, and `decoding` is specialized where the generic `validating`
        // looks up type metadata at run time (a quarter of this reader's time when it was used
        // for every string).
        return ascii ? String(decoding: text, as: UTF8.self) : String(validating: text, as: UTF8.self)
    }

    /// A string or `null`.
    mutating func optionalString(into slot: inout String?) -> Bool {
        if literal("null") {
            slot = nil
            return true
        }
        guard let s = string() else { return false }
        slot = s
        return true
    }

    /// Reads a number in JSON's grammar, `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`,
    /// and returns where its text starts and whether it is an integer.
    private mutating func number() -> (start: Int, integral: Bool)? {
        skipSpace()
        let start = i
        func digits(_ r: inout HotJSONReader) -> Int {
            let s = r.i
            while r.i < r.bytes.count, r.bytes[r.i] >= 0x30, r.bytes[r.i] <= 0x39 { r.i += 1 }
            return r.i - s
        }
        if i < bytes.count, bytes[i] == 0x2D { i += 1 }
        guard i < bytes.count else { return nil }
        if bytes[i] == 0x30 {
            i += 1
        } else {
            guard digits(&self) > 0 else { return nil }
        }
        var integral = true
        if i < bytes.count, bytes[i] == 0x2E {
            i += 1
            integral = false
            guard digits(&self) > 0 else { return nil }
        }
        if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            i += 1
            integral = false
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            guard digits(&self) > 0 else { return nil }
        }
        return (start, integral)
    }

    /// A finite JSON number, or one of the strings the general parser reads as a number.
    mutating func double() -> Double? {
        if peek() == 0x22 {
            // Numeric strings other than these go to the general parser.
            return string().flatMap(JSONBody.nonFinite)
        }
        guard let (start, integral) = number() else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
        guard let d = Self.exactDouble(text) ?? Double(String(decoding: text, as: UTF8.self)), d.isFinite else { return nil }
        // An integer has no sign of zero: `-0` is 0, as in the general parser (and Python).
        return integral && d == 0 ? 0 : d
    }

    /// Powers of ten that a Double holds exactly.
    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The value of a number (already checked against JSON's grammar) when its digits fit in
    /// 2^53 and its decimal exponent in ±22: then the digits and the power of ten are exact
    /// doubles, and one multiplication or division rounds correctly (Clinger's fast path).
    /// Nil otherwise, for the full conversion.
    static func exactDouble(_ text: UnsafeRawBufferPointer) -> Double? {
        var k = 0
        let negative = text[0] == 0x2D
        if negative { k = 1 }
        var mantissa: UInt64 = 0
        var exponent = 0
        var fraction = false
        while k < text.count {
            let c = text[k]
            if c == 0x2E {
                fraction = true
            } else if c >= 0x30 && c <= 0x39 {
                guard mantissa < 100_000_000_000_000_000 else { return nil }
                mantissa = mantissa * 10 + UInt64(c - 0x30)
                if fraction { exponent -= 1 }
            } else {
                break  // e or E
            }
            k += 1
        }
        if k < text.count {
            k += 1
            var sign = 1
            if text[k] == 0x2B { k += 1 } else if text[k] == 0x2D { sign = -1; k += 1 }
            var e = 0
            while k < text.count {
                guard e < 1000 else { return nil }
                e = e * 10 + Int(text[k] - 0x30)
                k += 1
            }
            exponent += sign * e
        }
        guard mantissa <= 1 << 53, exponent >= -22, exponent <= 22 else { return nil }
        let m = Double(mantissa)
        let d = exponent < 0 ? m / exactPowersOfTen[-exponent] : m * exactPowersOfTen[exponent]
        return negative ? -d : d
    }

    /// An integer written as a JSON integer or as a decimal string.
    mutating func int64() -> Int64? {
        if peek() == 0x22 {
            guard let s = string() else { return nil }
            return Int64(s)
        }
        guard let (start, integral) = number(), integral else { return nil }
        var k = start
        let negative = bytes[k] == 0x2D
        if negative { k += 1 }
        var value: Int64 = 0
        while k < i {
            let digit = Int64(bytes[k] - 0x30)
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = next
            k += 1
        }
        return value
    }

    /// Skips any value whose strings have no escapes.
    mutating func skipValue() -> Bool {
        switch peek() {
        case 0x22: return string() != nil
        case 0x7B: return object { r, _ in r.skipValue() }
        case 0x5B: return nullableArray { r in r.skipValue() }
        case 0x74: return literal("true")
        case 0x66: return literal("false")
        case 0x6E: return literal("null")
        default: return number() != nil
        }
    }

    /// A metric object; members other than the metric's go to `extra`.
    mutating func metric(extra: (inout HotJSONReader, JSONName) -> Bool) -> FastBodies.MetricBody? {
        var key: String?
        var value: Double?
        var timestamp: Int64?
        var step: Int64?
        var modelID: String?
        var datasetName: String?
        var datasetDigest: String?
        var seen = SeenMembers()
        let ok = object { r, member in
            switch member {
            case "key": return seen.first(0) && r.optionalString(into: &key)
            case "value":
                guard seen.first(1), let v = r.double() else { return false }
                value = v
                return true
            case "timestamp":
                guard seen.first(2), let t = r.int64() else { return false }
                timestamp = t
                return true
            case "step":
                guard seen.first(3), let s = r.int64() else { return false }
                step = s
                return true
            case "model_id": return seen.first(4) && r.optionalString(into: &modelID)
            case "dataset_name": return seen.first(5) && r.optionalString(into: &datasetName)
            case "dataset_digest": return seen.first(6) && r.optionalString(into: &datasetDigest)
            default: return extra(&r, member)
            }
        }
        guard ok, let key, let value, let timestamp else { return nil }
        return FastBodies.MetricBody(
            runID: nil, key: key, value: value, timestamp: timestamp, step: step,
            modelID: modelID, datasetName: datasetName, datasetDigest: datasetDigest)
    }

    /// `{"key": "...", "value": "..."}` with string values.
    mutating func keyValue() -> FastBodies.KeyValue? {
        var key: String?
        var value: String?
        var seen = SeenMembers()
        let ok = object { r, member in
            switch member {
            case "key": return seen.first(0) && r.optionalString(into: &key)
            case "value": return seen.first(1) && r.optionalString(into: &value)
            default: return r.skipValue()
            }
        }
        guard ok, let key, let value else { return nil }
        return FastBodies.KeyValue(key: key, value: value)
    }
}

/// The bytes of a member name, matched against ASCII literals in a `switch`.
struct JSONName {
    let bytes: UnsafeRawBufferPointer

    static func ~= (pattern: StaticString, name: JSONName) -> Bool {
        let n = pattern.utf8CodeUnitCount
        guard n == name.bytes.count else { return false }
        guard n > 0, let base = name.bytes.baseAddress else { return true }
        return memcmp(pattern.utf8Start, base, n) == 0
    }
}

/// Which known members an object has had. The general parser keeps the first of repeated
/// members (JSONDecoder); the fast path declines such bodies rather than pick one.
struct SeenMembers {
    private var bits: UInt32 = 0

    /// True the first time `member` is seen.
    mutating func first(_ member: Int) -> Bool {
        let bit: UInt32 = 1 << member
        defer { bits |= bit }
        return bits & bit == 0
    }
}
