import Crypto
import Foundation
import LoomCore

/// Putting values in for `${{ ... }}` references.
public enum Substitution {
    /// Options with `${{ parameters.x }}` replaced: a string that is only a reference takes the
    /// parameter's value (a number stays a number); a reference inside text becomes its text.
    public static func options(_ options: [String: JSONValue], parameters: [String: ParameterValue]) -> [String: JSONValue] {
        options.mapValues { value($0, parameters) }
    }

    static func value(_ v: JSONValue, _ parameters: [String: ParameterValue]) -> JSONValue {
        switch v {
        case .string(let s):
            let refs = References.find(in: s)
            if refs.count == 1, refs[0].range == s.startIndex..<s.endIndex, refs[0].path.count == 2, refs[0].path[0] == "parameters",
               let p = parameters[refs[0].path[1]] {
                switch p {
                case .number(let d): return .number(d, raw: nil)
                case .integer(let i): return .number(Double(i), raw: String(i))
                case .boolean(let b): return .bool(b)
                case .string(let t): return .string(t)
                }
            }
            return .string(text(s) { path in path.count == 2 && path[0] == "parameters" ? parameters[path[1]]?.text : nil })
        case .array(let a): return .array(a.map { value($0, parameters) })
        case .object(let o): return .object(o.mapValues { value($0, parameters) })
        default: return v
        }
    }

    /// `text` with each reference replaced by what `lookup` gives for its path (left as written
    /// when it gives nil).
    public static func text(_ text: String, _ lookup: ([String]) -> String?) -> String {
        var out = ""
        var at = text.startIndex
        for ref in References.find(in: text) {
            out += text[at..<ref.range.lowerBound]
            out += lookup(ref.path) ?? String(text[ref.range])
            at = ref.range.upperBound
        }
        out += text[at...]
        return out
    }
}

/// What decides whether a step's earlier outputs can be reused: SHA-256 over a canonical JSON
/// (sorted keys) of the step's kind, its options with parameters put in, its command line, its
/// environment, the content digests of its declared code files and of its inputs, and the key's
/// own format version. Anything else (the step's name, retries, timeout, other steps) does not
/// change what the step computes, so it is left out.
public struct StepCacheKey: Sendable, Equatable, Codable {
    public static let version = 1
    public var version = StepCacheKey.version
    public var kind: String
    public var options: [String: JSONValue]
    public var command: String?
    public var environment: [String: String]
    /// Path (relative to the spec) to `sha256:...`.
    public var code: [String: String]
    /// Input name to the digest of what fed it (a dataset version's content digest, a model
    /// version's artifact digest, a file's digest, or a value's text).
    public var inputs: [String: String]

    public init(
        step: PipelineSpec.Step, parameters: [String: ParameterValue], inputs: [String: String], code: [String: String]
    ) {
        kind = step.kind.rawValue
        options = Substitution.options(step.options, parameters: parameters)
        command = step.command.map { c in
            // Paths of inputs and outputs differ from run to run: they stay as written; what
            // feeds the inputs is in `inputs`.
            Substitution.text(c) { path in path.count == 2 && path[0] == "parameters" ? parameters[path[1]]?.text : nil }
        }
        environment = step.environment
        self.code = code
        self.inputs = inputs
    }

    /// `sha256:<hex>`.
    public var digest: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data()
        return "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: data))
    }
}
