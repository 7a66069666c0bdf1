import Foundation
import Yams

/// Where provider keys are read from: the server's environment, and a secrets file
/// (`LOOM_SECRETS_FILE`: a YAML mapping of entry names to keys, or `NAME=value` lines). Read
/// when the gateway's table is built; nothing read here is logged or stored.
public struct SecretSource: Sendable {
    let variables: [String: String]
    let entries: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, secretsFile: String? = nil) {
        variables = environment
        let path = secretsFile ?? environment["LOOM_SECRETS_FILE"]
        entries = path.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }.map(Self.parse) ?? [:]
    }

    /// A YAML mapping of text values, or `NAME=value` lines (`#` comments, optional quotes).
    static func parse(_ text: String) -> [String: String] {
        if let mapping = try? Yams.load(yaml: text) as? [String: Any] {
            var out: [String: String] = [:]
            for (k, v) in mapping {
                if let s = v as? String { out[k] = s } else if let i = v as? Int { out[k] = String(i) }
            }
            if !out.isEmpty { return out }
        }
        var out: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            var value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == value.last, f == "\"" || f == "'" { value = String(value.dropFirst().dropLast()) }
            out[trimmed[..<eq].trimmingCharacters(in: .whitespaces)] = value
        }
        return out
    }

    func environment(_ name: String) -> String? { variables[name].flatMap { $0.isEmpty ? nil : $0 } }
    func secret(_ name: String) -> String? { entries[name].flatMap { $0.isEmpty ? nil : $0 } }
}
