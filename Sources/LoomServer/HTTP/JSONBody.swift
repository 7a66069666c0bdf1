import Foundation
import LoomCore

/// A JSON object from a request body with typed, validating accessors.
public struct JSONBody: Sendable {
    public let fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// Parses `data`; an empty body is an empty object. `NaN` and `Infinity` literals (which
    /// Python's `json` module writes) are accepted.
    public static func parse(_ data: Data) throws(LoomError) -> JSONBody {
        if data.isEmpty || data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return JSONBody([:])
        }
        // JSONDecoder, not JSONSerialization: on Linux the latter rounds about half of all
        // 17-digit numbers to a neighbouring double; JSONDecoder reads them exactly, as
        // Python's `json` (the MLflow client and server) does. Of repeated members it keeps
        // the first (Python the last); no client sends them.
        // JSON is UTF-8; Foundation's JSON5 scanner (the lenient pass below) traps on invalid
        // UTF-8 instead of throwing, so such a body is refused before either pass.
        guard String(validating: data, as: UTF8.self) != nil else {
            throw .badRequest("Malformed JSON request body: not UTF-8")
        }
        let value: JSONValue
        if let v = try? JSONDecoder().decode(JSONValue.self, from: data) {
            value = v
        } else {
            let lenient = JSONDecoder()
            lenient.allowsJSON5 = true
            guard let v = try? lenient.decode(JSONValue.self, from: data) else {
                throw .badRequest("Malformed JSON request body")
            }
            value = v
        }
        guard case .object(let o) = value else {
            throw .invalidParameter("Request body must be a JSON object, got \(value.typeName)")
        }
        return JSONBody(o)
    }

    func invalid(_ key: String, _ v: JSONValue, _ expected: String) -> LoomError {
        .invalidParameter("Invalid value \(Self.render(v)) for parameter '\(key)' supplied: expected \(expected)")
    }

    static func render(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d, let raw): return raw ?? String(d)
        case .string(let s): return "'\(s.prefix(100))'"
        case .array: return "[...]"
        case .object: return "{...}"
        }
    }

    public func has(_ key: String) -> Bool {
        if let v = fields[key], v != .null { return true }
        return false
    }

    public func string(_ key: String) throws(LoomError) -> String? {
        guard let v = fields[key] else { return nil }
        switch v {
        case .null: return nil
        case .string(let s): return s
        default: throw invalid(key, v, "a string")
        }
    }

    public func requiredString(_ key: String) throws(LoomError) -> String {
        guard let s = try string(key) else { throw .invalidParameter("Missing value for required parameter '\(key)'. See the API docs for more information about request parameters.") }
        return s
    }

    /// A string that may also be given as a number (ids, versions).
    public func idString(_ key: String) throws(LoomError) -> String? {
        guard let v = fields[key] else { return nil }
        switch v {
        case .null: return nil
        case .string(let s): return s
        case .number(let d, let raw):
            if let raw { return raw }
            if d == d.rounded(), abs(d) < 9e15 { return String(Int64(d)) }
            return String(d)
        default: throw invalid(key, v, "a string")
        }
    }

    public func int64(_ key: String) throws(LoomError) -> Int64? {
        guard let v = fields[key] else { return nil }
        return try Self.int64(v, key: key)
    }

    static func int64(_ v: JSONValue, key: String) throws(LoomError) -> Int64? {
        switch v {
        case .null: return nil
        case .number(let d, let raw):
            if let raw, let i = Int64(raw) { return i }
            guard d.isFinite, d == d.rounded(), abs(d) < 9.2e18 else {
                throw .invalidParameter("Invalid value \(render(v)) for parameter '\(key)' supplied: expected an integer")
            }
            return Int64(d)
        case .string(let s):
            guard let i = Int64(s.trimmingCharacters(in: .whitespaces)) else {
                throw .invalidParameter("Invalid value \(render(v)) for parameter '\(key)' supplied: expected an integer")
            }
            return i
        default:
            throw .invalidParameter("Invalid value \(render(v)) for parameter '\(key)' supplied: expected an integer")
        }
    }

    public func int(_ key: String) throws(LoomError) -> Int? {
        guard let v = try int64(key) else { return nil }
        guard v >= Int64(Int32.min), v <= Int64(Int32.max) else {
            throw .invalidParameter("Invalid value \(v) for parameter '\(key)' supplied: out of range")
        }
        return Int(v)
    }

    public func double(_ key: String) throws(LoomError) -> Double? {
        guard let v = fields[key] else { return nil }
        return try Self.double(v, key: key)
    }

    static func double(_ v: JSONValue, key: String) throws(LoomError) -> Double? {
        switch v {
        case .null: return nil
        case .number(let d, _): return d
        case .string(let s):
            guard let d = nonFinite(s) ?? Double(s) else {
                throw .invalidParameter("Invalid value \(render(v)) for parameter '\(key)' supplied: expected a number")
            }
            return d
        default:
            throw .invalidParameter("Invalid value \(render(v)) for parameter '\(key)' supplied: expected a number")
        }
    }

    /// The strings MLflow's clients send for non-finite doubles.
    static func nonFinite(_ s: String) -> Double? {
        switch s {
        case "NaN", "nan": return .nan
        case "Infinity", "inf": return .infinity
        case "-Infinity", "-inf": return -.infinity
        default: return nil
        }
    }

    public func bool(_ key: String) throws(LoomError) -> Bool? {
        guard let v = fields[key] else { return nil }
        switch v {
        case .null: return nil
        case .bool(let b): return b
        case .string(let s) where s == "true" || s == "false": return s == "true"
        default: throw invalid(key, v, "a boolean")
        }
    }

    public func array(_ key: String) throws(LoomError) -> [JSONValue] {
        guard let v = fields[key] else { return [] }
        switch v {
        case .null: return []
        case .array(let a): return a
        default: throw invalid(key, v, "an array")
        }
    }

    public func objects(_ key: String) throws(LoomError) -> [JSONBody] {
        try array(key).enumerated().map { (i, v) throws(LoomError) -> JSONBody in
            guard case .object(let o) = v else { throw invalid("\(key)[\(i)]", v, "an object") }
            return JSONBody(o)
        }
    }

    public func object(_ key: String) throws(LoomError) -> JSONBody? {
        guard let v = fields[key] else { return nil }
        switch v {
        case .null: return nil
        case .object(let o): return JSONBody(o)
        default: throw invalid(key, v, "an object")
        }
    }

    public func strings(_ key: String) throws(LoomError) -> [String] {
        if case .string(let one)? = fields[key] { return [one] }
        return try array(key).enumerated().map { (i, v) throws(LoomError) -> String in
            switch v {
            case .string(let s): return s
            case .number(let d, let raw): return raw ?? String(d)
            default: throw invalid("\(key)[\(i)]", v, "a string")
            }
        }
    }

    /// `[{"key": ..., "value": ...}]` lists of tags and params.
    public func tags(_ key: String, valueRequired: Bool = true) throws(LoomError) -> [Tag] {
        try objects(key).enumerated().map { (i, o) throws(LoomError) -> Tag in
            guard let k = try o.string("key") else { throw .invalidParameter("Missing value for required parameter '\(key)[\(i)].key'.") }
            let v: String
            if let s = try o.string("value") { v = s }
            else if case .number(let d, let raw)? = o.fields["value"] { v = raw ?? String(d) }
            else if valueRequired { throw .invalidParameter("Missing value for required parameter '\(key)[\(i)].value'.") }
            else { v = "" }
            return Tag(key: k, value: v)
        }
    }
}
