import Foundation
import LoomCore
import LoomSpec
import Yams

/// A flow as written in YAML (`kind: flow`, docs/flows.md): typed inputs, a DAG of nodes
/// (`prompt`, `llm`, `retrieve`, `tool`, `branch`, `map`) whose parameters refer to inputs and
/// to other nodes' outputs with `${inputs.NAME}` and `${NODE.OUTPUT}`, and the flow's outputs.
/// `parse` checks it whole before anything runs: unknown kinds and keys, references to nodes,
/// inputs or outputs that do not exist, type mismatches and cycles, each with its field named.
public struct FlowSpec: Sendable {
    public enum ValueType: String, Sendable, CaseIterable {
        case string, integer, number, boolean, list, object, messages, any

        /// "a string", "an integer".
        var withArticle: String { self == .messages ? "messages" : (["integer", "object", "any"].contains(rawValue) ? "an " : "a ") + rawValue }

        /// Whether a value of type `actual` can go where `self` is expected.
        func accepts(_ actual: ValueType) -> Bool {
            if self == .any || actual == .any || self == actual { return true }
            switch self {
            case .string: return [.integer, .number, .boolean].contains(actual)
            case .number: return actual == .integer
            case .list: return actual == .messages
            case .messages: return actual == .list
            default: return false
            }
        }
    }

    public enum Kind: String, Sendable, CaseIterable {
        case prompt, llm, retrieve, tool, branch, map
    }

    public struct Input: Sendable {
        public var name: String
        public var type: ValueType
        public var defaultValue: JSONValue?
        public var description: String?
    }

    /// `${inputs.NAME}`, `${NODE.OUTPUT[.key...]}`, or `${item[.key...]}` inside a map.
    public struct Reference: Sendable, Hashable, CustomStringConvertible {
        public var source: String
        public var output: String?
        public var path: [String]

        public var description: String { "${" + ([source] + (output.map { [$0] } ?? []) + path).joined(separator: ".") + "}" }
    }

    /// A parameter's value: a literal, one reference (its value keeps its type), a text with
    /// references in it (a string), or objects and lists of these.
    public indirect enum Value: Sendable {
        case literal(JSONValue)
        case reference(Reference)
        case template([TemplatePart])
        case object([String: Value])
        case list([Value])

        public enum TemplatePart: Sendable {
            case text(String)
            case reference(Reference)
        }

        var references: [Reference] {
            switch self {
            case .literal: []
            case .reference(let r): [r]
            case .template(let parts): parts.compactMap { if case .reference(let r) = $0 { r } else { nil } }
            case .object(let o): o.values.flatMap(\.references)
            case .list(let l): l.flatMap(\.references)
            }
        }

        var literalString: String? {
            if case .literal(.string(let s)) = self { return s }
            return nil
        }
    }

    /// `A op B`, `not A`, or `A` (truthy), where A and B are references or literals.
    public struct Condition: Sendable {
        public enum Operator: String, Sendable, CaseIterable {
            case equal = "==", notEqual = "!=", greaterOrEqual = ">=", lessOrEqual = "<=", greater = ">", less = "<", contains = "contains"
        }

        public var negated: Bool
        public var left: Value
        public var op: Operator?
        public var right: Value?
        public var text: String

        var references: [Reference] { left.references + (right?.references ?? []) }
    }

    public struct Node: Sendable {
        public var name: String
        public var kind: Kind
        public var parameters: [String: Value]
        /// Runs only when this holds (else it, and what needs its outputs, is skipped).
        public var condition: Condition?
        /// Named sets of parameters that replace the node's own when the variant is chosen.
        public var variants: [String: [String: Value]]
        /// A map's node, run once per item.
        public var body: Box?
        /// The branch's condition.
        public var branch: Condition?

        /// The nodes it needs (with any variant), by name.
        public var needs: [String] { Array(Set(allReferences.map(\.source)).subtracting(["inputs", "item"])).sorted() }

        /// What the node needs as it runs: its parameters, its condition, its map's node.
        var references: [Reference] {
            var all = parameters.values.flatMap(\.references) + (condition?.references ?? []) + (branch?.references ?? [])
            if let body { all += body.node.references.filter { $0.source != "item" } }
            return all
        }

        /// What it may need with any of its variants (what the checks before a run look at).
        var allReferences: [Reference] { references + variants.values.flatMap { $0.values.flatMap(\.references) } }

        /// The node with a variant's parameters in place of its own.
        func with(variant: String?) -> Node {
            guard let variant, let params = variants[variant] else { return self }
            var n = self
            n.parameters.merge(params) { _, new in new }
            return n
        }
    }

    /// A map's inner node (a class, so that `Node` can hold one).
    public final class Box: Sendable {
        public let node: Node
        init(_ node: Node) { self.node = node }
    }

    public var name: String
    public var description: String?
    public var inputs: [Input]
    public var nodes: [Node]
    public var outputs: [(name: String, value: Value)]

    /// Each kind's outputs and their types.
    public static let outputs: [Kind: [String: ValueType]] = [
        .prompt: ["messages": .messages, "text": .string],
        .llm: ["text": .string, "usage": .object, "model": .string, "json": .any],
        .retrieve: ["hits": .list, "text": .string, "sources": .list, "count": .integer],
        .tool: ["status": .integer, "body": .any, "text": .string],
        .branch: ["result": .boolean],
        .map: ["results": .list],
    ]

    /// Each kind's parameters: type, and whether required.
    static let parameters: [Kind: [String: (type: ValueType, required: Bool)]] = [
        .prompt: ["prompt": (.string, false), "template": (.any, false), "variables": (.object, false)],
        .llm: ["route": (.string, true), "messages": (.messages, false), "prompt": (.string, false), "system": (.string, false), "settings": (.object, false),
               "json": (.boolean, false)],
        .retrieve: ["index": (.string, true), "query": (.string, true), "k": (.integer, false), "mode": (.string, false), "filter": (.object, false)],
        .tool: ["url": (.string, false), "method": (.string, false), "headers": (.object, false), "body": (.any, false), "timeout": (.number, false),
                "command": (.list, false), "input": (.any, false), "directory": (.string, false), "environment": (.object, false)],
        .branch: [:],
        .map: ["over": (.list, true), "concurrency": (.integer, false)],
    ]

    public static func parse(yaml text: String, file: String = "flow.yaml") throws(LoomError) -> FlowSpec {
        let reader = FlowSpecReader()
        let spec = reader.read(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// The nodes in the order they run.
    public var runOrder: [Node] { order }

    /// The nodes in an order that runs each after what it needs.
    var order: [Node] {
        var done: Set<String> = []
        var out: [Node] = []
        while out.count < nodes.count {
            let before = out.count
            defer { if out.count == before { out += nodes.filter { !done.contains($0.name) } } }
            for n in nodes where !done.contains(n.name) && Set(n.allReferences.map(\.source)).subtracting(["inputs", "item"]).isSubset(of: done) {
                done.insert(n.name)
                out.append(n)
            }
        }
        return out
    }
}
