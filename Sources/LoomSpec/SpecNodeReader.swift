import Foundation
import LoomCore
import Yams

/// A problem with a spec: where (line, field) and what.
public struct SpecProblem: Sendable, Hashable, CustomStringConvertible {
    public var line: Int?
    /// The field's path: `steps.train.inputs.data`.
    public var field: String
    public var message: String

    public init(line: Int?, field: String, message: String) {
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        (line.map { "line \($0), " } ?? "") + (field.isEmpty ? "" : "\(field): ") + message
    }
}

/// Reads a YAML spec node by node (pipelines, monitors), keeping every node's line for the problems it finds.
open class SpecNodeReader {
    public private(set) var problems: [SpecProblem] = []

    public init() {}

    public func problem(_ node: Node?, _ field: String, _ message: String) {
        problems.append(SpecProblem(line: node?.mark?.line, field: field, message: message))
    }

    public func problem(line: Int?, _ field: String, _ message: String) {
        problems.append(SpecProblem(line: line, field: field, message: message))
    }

    /// The document's root and its top-level pairs; nil (with a problem) when the text is not
    /// YAML, is empty, or is not a mapping (`what` says what it should be).
    public func document(_ text: String, what: String) -> (root: Node, top: [Pair])? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .basic)
        } catch {
            problem(line: nil, "", "not valid YAML: \(error)")
            return nil
        }
        guard let root else {
            problem(line: nil, "", "the spec is empty")
            return nil
        }
        guard let top = pairs(root, "", what: what) else { return nil }
        return (root, top)
    }

    public typealias Pair = (key: String, keyNode: Node, value: Node)

    /// The pairs of a mapping, in order (the YAML parser refuses a key given twice); a problem
    /// for anything else.
    public func pairs(_ node: Node, _ field: String, what: String = "a mapping") -> [Pair]? {
        guard let mapping = node.mapping else {
            problem(node, field, "must be \(what)")
            return nil
        }
        var out: [Pair] = []
        for (k, v) in mapping {
            guard let key = k.string, k.scalar != nil else {
                problem(k, field, "keys must be text")
                continue
            }
            out.append((key, k, v))
        }
        return out
    }

    public func unknownKeys(_ pairs: [Pair], _ allowed: [String], _ field: String) {
        for p in pairs where !allowed.contains(p.key) {
            problem(p.keyNode, field.isEmpty ? p.key : "\(field).\(p.key)", "unknown key (expected one of: \(allowed.joined(separator: ", ")))")
        }
    }

    public func text(_ node: Node, _ field: String) -> String? {
        guard case .string(let s)? = scalar(node) else {
            problem(node, field, "must be text")
            return nil
        }
        return s
    }

    /// A letter, then letters, digits, `_` or `-`; at most 64.
    public static func isName(_ s: String) -> Bool {
        let u = s.utf8
        guard let first = u.first, u.count <= 64, (first | 0x20) >= 0x61, (first | 0x20) <= 0x7A else { return false }
        return u.allSatisfy { c in
            ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
        }
    }

    /// What a YAML scalar holds, by YAML 1.2's core schema: quoted scalars are text; plain ones
    /// are null (`~`, `null`, empty), booleans (`true`, `false`), integers, floats (`.inf`,
    /// `.nan` too) or text. (The parser runs with Yams' basic resolver, which types nothing:
    /// its regular expressions per scalar cost more than the rest of reading a spec.)
    public enum Scalar: Equatable {
        case null, bool(Bool), int(Int), float(Double), string(String)
    }

    public func scalar(_ node: Node) -> Scalar? {
        guard let s = node.scalar else { return nil }
        let text = s.string
        guard s.style == .plain else { return .string(text) }
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if let i = Int(text) { return .int(i) }
        if text.hasPrefix("0x"), let i = Int(text.dropFirst(2), radix: 16) { return .int(i) }
        if text.hasPrefix("0o"), let i = Int(text.dropFirst(2), radix: 8) { return .int(i) }
        if text.contains(where: \.isNumber), text.allSatisfy({ "0123456789+-.eE".contains($0) }), let d = Double(text) { return .float(d) }
        return .string(text)
    }

    public func int(_ node: Node) -> Int? {
        if case .int(let i)? = scalar(node) { return i }
        return nil
    }

    public func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let raw):
            switch scalar(node) {
            case .null?, nil: return .null
            case .bool(let b)?: return .bool(b)
            case .int(let i)?: return .number(Double(i), raw: raw.string)
            case .float(let d)?: return d.isFinite ? .number(d, raw: raw.string) : .string(raw.string)
            case .string(let s)?: return .string(s)
            }
        case .sequence(let s): return .array(s.map { json($0) })
        case .mapping(let m):
            var out: [String: JSONValue] = [:]
            for (k, v) in m { out[k.string ?? ""] = json(v) }
            return .object(out)
        case .alias: return .null
        }
    }

    /// `90`, `90s`, `10m`, `2h`, `1d`, `1.5h`: seconds.
    public func duration(_ node: Node) -> Double? {
        switch scalar(node) {
        case .int(let i)?: return i >= 0 ? Double(i) : nil
        case .float(let d)?: return d >= 0 && d.isFinite ? d : nil
        case .string(let text)?:
            return duration(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    public func duration(_ s: String) -> Double? {
        guard let unit = s.last else { return nil }
        let scale: Double
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86400
        default: return nil
        }
        guard let v = Double(s.dropLast()), v >= 0, v.isFinite else { return nil }
        return v * scale
    }

}

extension SpecProblem {
    /// One error naming every problem, in the file's order (problems without a line first).
    public static func error(_ problems: [SpecProblem], file: String) -> LoomError {
        let list = problems.count == 1 ? problems[0].description
            : "\(problems.count) problems:\n" + problems.map { "  " + $0.description }.joined(separator: "\n")
        return .invalidParameter("\(file): \(list)")
    }

    /// Sorted by line, keeping the order found within a line.
    public static func ordered(_ problems: [SpecProblem]) -> [SpecProblem] {
        problems.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
    }
}
