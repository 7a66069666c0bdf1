import Foundation
import LoomCore

/// Query-string parameters with repeated keys, `+` as space, and percent-decoding.
public struct QueryParameters: Sendable {
    private var values: [String: [String]] = [:]

    public init(_ query: String?) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values[key, default: []].append(value)
        }
    }

    static func decode(_ s: Substring) -> String {
        let spaced = s.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    public subscript(_ key: String) -> String? { values[key]?.last }

    public func all(_ key: String) -> [String] {
        // MLflow clients send lists as repeated keys; some send `key[]`.
        (values[key] ?? []) + (values[key + "[]"] ?? [])
    }

    public func int(_ key: String) throws(LoomError) -> Int? {
        guard let s = self[key], !s.isEmpty else { return nil }
        guard let v = Int(s) else { throw .invalidParameter("Invalid value '\(s)' for parameter '\(key)' supplied: expected an integer") }
        return v
    }

    public func int64(_ key: String) throws(LoomError) -> Int64? {
        guard let s = self[key], !s.isEmpty else { return nil }
        guard let v = Int64(s) else { throw .invalidParameter("Invalid value '\(s)' for parameter '\(key)' supplied: expected an integer") }
        return v
    }

    public func bool(_ key: String) throws(LoomError) -> Bool? {
        guard let s = self[key], !s.isEmpty else { return nil }
        switch s.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .invalidParameter("Invalid value '\(s)' for parameter '\(key)' supplied: expected true or false")
        }
    }

    public func required(_ key: String) throws(LoomError) -> String {
        guard let s = self[key] else {
            throw .invalidParameter("Missing value for required parameter '\(key)'. See the API docs for more information about request parameters.")
        }
        return s
    }

    /// As a JSON body, so GET and POST handlers can share their parsing.
    public var asBody: JSONBody {
        var fields: [String: JSONValue] = [:]
        for (k, v) in values {
            let key = k.hasSuffix("[]") ? String(k.dropLast(2)) : k
            if v.count > 1 {
                fields[key] = .array(v.map { .string($0) })
            } else if let one = v.last {
                fields[key] = .string(one)
            }
        }
        return JSONBody(fields)
    }
}
