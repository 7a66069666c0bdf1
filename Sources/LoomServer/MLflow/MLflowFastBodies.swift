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
        data.withUnsafeBytes { raw -> MetricBody? in
            var reader = HotJSONReader(raw)
            var ids = RunIDs()
            guard let m = reader.metric(extra: { r, key in ids.read(&r, key) }), reader.atEnd else { return nil }
            guard let runID = ids.runID else { return nil }
            var body = m
            body.runID = runID
            return body
        }
    }

    /// A `log-batch` body, or nil when it is not plain enough for the fast path.
    static func batch(_ data: Data) -> BatchBody? {
        data.withUnsafeBytes { raw -> BatchBody? in
            var reader = HotJSONReader(raw)
            var ids = RunIDs()
            var body = BatchBody()
            let ok = reader.object { r, key in
                switch key {
                case "metrics":
                    // A repeated member replaces the earlier one, as in the general parser.
                    var list: [FastBodies.MetricBody] = []
                    let ok = r.nullableArray { r in
                        guard let m = r.metric(extra: { r, _ in r.skipValue() }) else { return false }
                        list.append(m)
                        return true
                    }
                    body.metrics = list
                    return ok
                case "params", "tags":
                    var list: [KeyValue] = []
                    let ok = r.nullableArray { r in
                        guard let kv = r.keyValue() else { return false }
                        list.append(kv)
                        return true
                    }
                    if key == "params" { body.params = list } else { body.tags = list }
                    return ok
                default:
                    return ids.read(&r, key)
                }
            }
            guard ok, reader.atEnd, let runID = ids.runID else { return nil }
            body.runID = runID
            return body
        }
    }

    /// `run_id` or its old name `run_uuid`, as ``MLflowController/runID(_:)`` picks them.
    private struct RunIDs {
        var runID_: String?
        var runUUID: String?
        var runID: String? {
            if let id = runID_, !id.isEmpty { return id }
            if let id = runUUID, !id.isEmpty { return id }
            return nil
        }

        /// Reads the value of `key` if it is a run id; skips any other member.
        mutating func read(_ r: inout HotJSONReader, _ key: String) -> Bool {
            switch key {
            case "run_id": return r.optionalString(into: &runID_)
            case "run_uuid": return r.optionalString(into: &runUUID)
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
    mutating func object(_ member: (inout HotJSONReader, String) -> Bool) -> Bool {
        guard depth < 16, consume(0x7B) else { return false }
        depth += 1
        defer { depth -= 1 }
        if consume(0x7D) { return true }
        repeat {
            guard let key = string(), consume(0x3A), member(&self, key) else { return false }
        } while consume(0x2C)
        return consume(0x7D)
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
        guard consume(0x22) else { return nil }
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 {
                let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == 0x5C || c < 0x20 { return nil }
            i += 1
        }
        return nil
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

    /// The text of a number in JSON's grammar: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    private mutating func numberText() -> (text: String, integral: Bool)? {
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
        return (String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self), integral)
    }

    /// A finite JSON number, or one of the strings the general parser reads as a number.
    mutating func double() -> Double? {
        if peek() == 0x22 {
            // Numeric strings other than these go to the general parser.
            return string().flatMap(JSONBody.nonFinite)
        }
        guard let (text, _) = numberText(), let d = Double(text), d.isFinite else { return nil }
        return d
    }

    /// An integer written as a JSON integer or as a decimal string.
    mutating func int64() -> Int64? {
        if peek() == 0x22 {
            guard let s = string() else { return nil }
            return Int64(s)
        }
        guard let (text, integral) = numberText(), integral else { return nil }
        return Int64(text)
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
        default: return numberText() != nil
        }
    }

    /// A metric object; members other than the metric's go to `extra`.
    mutating func metric(extra: (inout HotJSONReader, String) -> Bool) -> FastBodies.MetricBody? {
        var key: String?
        var value: Double?
        var timestamp: Int64?
        var step: Int64?
        var modelID: String?
        var datasetName: String?
        var datasetDigest: String?
        let ok = object { r, member in
            switch member {
            case "key": return r.optionalString(into: &key)
            case "value":
                guard let v = r.double() else { return false }
                value = v
                return true
            case "timestamp":
                guard let t = r.int64() else { return false }
                timestamp = t
                return true
            case "step":
                guard let s = r.int64() else { return false }
                step = s
                return true
            case "model_id": return r.optionalString(into: &modelID)
            case "dataset_name": return r.optionalString(into: &datasetName)
            case "dataset_digest": return r.optionalString(into: &datasetDigest)
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
        let ok = object { r, member in
            switch member {
            case "key": return r.optionalString(into: &key)
            case "value": return r.optionalString(into: &value)
            default: return r.skipValue()
            }
        }
        guard ok, let key, let value else { return nil }
        return FastBodies.KeyValue(key: key, value: value)
    }
}
