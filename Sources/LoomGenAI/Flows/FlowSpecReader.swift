import Foundation
import LoomCore
import LoomSpec
import Yams

final class FlowSpecReader: SpecNodeReader {
    /// Where each node was written, for problems found after reading.
    var nodeMarks: [String: Node] = [:]

    func read(_ yaml: String) -> FlowSpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind: flow, name, inputs, nodes, outputs") else { return nil }
        unknownKeys(top, ["kind", "name", "description", "inputs", "nodes", "outputs"], "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }
        if let kind = value("kind") {
            if text(kind, "kind") != "flow" { problem(kind, "kind", "must be flow") }
        } else {
            problem(line: root.mark?.line, "kind", "is required (kind: flow)")
        }
        var name: String?
        if let node = value("name"), let s = text(node, "name") {
            if Self.isName(s) { name = s } else { problem(node, "name", "must start with a letter and hold letters, digits, _ or - (at most 64)") }
        } else if value("name") == nil {
            problem(line: root.mark?.line, "name", "is required")
        }
        let inputs = value("inputs").map(readInputs) ?? []
        var nodes: [FlowSpec.Node] = []
        if let list = value("nodes") {
            if let items = list.sequence, !items.isEmpty {
                for (i, item) in items.enumerated() {
                    if let n = readNode(item, "nodes[\(i)]", named: true) { nodes.append(n) }
                }
            } else {
                problem(list, "nodes", "must list at least one node")
            }
        } else {
            problem(line: root.mark?.line, "nodes", "is required")
        }
        var outputs: [(name: String, value: FlowSpec.Value)] = []
        if let node = value("outputs"), let p = pairs(node, "outputs", what: "a mapping of output names to ${NODE.OUTPUT} references") {
            for pair in p { outputs.append((pair.key, convert(json(pair.value), field: "outputs.\(pair.key)", at: pair.value))) }
        }
        check(inputs: inputs, nodes: nodes, outputs: outputs, outputsNode: value("outputs"))
        guard let name else { return nil }
        return FlowSpec(name: name, description: value("description").flatMap { text($0, "description") }, inputs: inputs, nodes: nodes, outputs: outputs)
    }

    func readInputs(_ node: Node) -> [FlowSpec.Input] {
        guard let p = pairs(node, "inputs", what: "a mapping of input names to {type, default, description}") else { return [] }
        var out: [FlowSpec.Input] = []
        for pair in p {
            let field = "inputs.\(pair.key)"
            guard Self.isName(pair.key) else {
                problem(pair.keyNode, field, "an input's name holds letters, digits, _ or -")
                continue
            }
            if let s = pair.value.scalar?.string, case .string = scalar(pair.value) {
                guard let type = FlowSpec.ValueType(rawValue: s) else {
                    problem(pair.value, field, "must be a type: \(FlowSpec.ValueType.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                out.append(FlowSpec.Input(name: pair.key, type: type))
                continue
            }
            guard let q = pairs(pair.value, field, what: "{type, default, description}") else { continue }
            unknownKeys(q, ["type", "default", "description"], field)
            func v(_ key: String) -> Node? { q.first { $0.key == key }?.value }
            var type = FlowSpec.ValueType.string
            if let t = v("type") {
                if let s = text(t, "\(field).type"), let parsed = FlowSpec.ValueType(rawValue: s) { type = parsed } else {
                    problem(t, "\(field).type", "must be one of \(FlowSpec.ValueType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            let defaultValue = v("default").map { json($0) }
            if let d = defaultValue, !FlowValues.conforms(d, to: type) { problem(v("default"), "\(field).default", "is not \(type.withArticle)") }
            out.append(FlowSpec.Input(name: pair.key, type: type, defaultValue: defaultValue, description: v("description").flatMap { text($0, "\(field).description") }))
        }
        return out
    }

    func readNode(_ node: Node, _ field: String, named: Bool) -> FlowSpec.Node? {
        guard let p = pairs(node, field, what: "a mapping {name, kind, ...}") else { return nil }
        func v(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        var name = ""
        if named {
            guard let n = v("name"), let s = text(n, "\(field).name") else {
                problem(v("name") ?? node, "\(field).name", "is required")
                return nil
            }
            guard Self.isName(s), s != "inputs", s != "item" else {
                problem(n, "\(field).name", "must start with a letter and hold letters, digits, _ or - (and not be inputs or item)")
                return nil
            }
            name = s
        }
        guard let k = v("kind"), let kindText = text(k, "\(field).kind"), let kind = FlowSpec.Kind(rawValue: kindText) else {
            problem(v("kind") ?? node, "\(field).kind", "must be one of \(FlowSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        let known = (FlowSpec.parameters[kind] ?? [:]).keys.sorted()
        var allowed = ["name", "kind", "if", "variants"] + known
        if kind == .branch { allowed.append("condition") }
        if kind == .map { allowed.append("node") }
        if !named { allowed.removeAll { $0 == "name" || $0 == "variants" } }
        unknownKeys(p, allowed, field)
        var parameters: [String: FlowSpec.Value] = [:]
        for pair in p where known.contains(pair.key) {
            parameters[pair.key] = convert(json(pair.value), field: "\(field).\(pair.key)", at: pair.value)
        }
        var variants: [String: [String: FlowSpec.Value]] = [:]
        if let vn = v("variants"), let vp = pairs(vn, "\(field).variants", what: "a mapping of variant names to parameters") {
            for variant in vp {
                let vf = "\(field).variants.\(variant.key)"
                guard let params = pairs(variant.value, vf, what: "the parameters this variant changes") else { continue }
                unknownKeys(params, known, vf)
                variants[variant.key] = Dictionary(uniqueKeysWithValues: params.filter { known.contains($0.key) }.map {
                    ($0.key, convert(json($0.value), field: "\(vf).\($0.key)", at: $0.value))
                })
            }
        }
        let condition = v("if").flatMap { readCondition($0, "\(field).if") }
        var branch: FlowSpec.Condition?
        if kind == .branch {
            if let c = v("condition") { branch = readCondition(c, "\(field).condition") } else { problem(node, "\(field).condition", "is required: what the branch tests") }
        }
        var body: FlowSpec.Box?
        if kind == .map {
            if let inner = v("node") {
                if let n = readNode(inner, "\(field).node", named: false) {
                    if n.kind == .map || n.kind == .branch { problem(inner, "\(field).node.kind", "a map runs a prompt, llm, retrieve or tool node") } else { body = FlowSpec.Box(n) }
                }
            } else {
                problem(node, "\(field).node", "is required: the node run for each item")
            }
        }
        for (key, spec) in FlowSpec.parameters[kind] ?? [:] where spec.required && parameters[key] == nil {
            problem(node, "\(field).\(key)", "is required for \(kind == .llm ? "an" : "a") \(kind.rawValue) node")
        }
        switch kind {
        case .llm where parameters["messages"] == nil && parameters["prompt"] == nil:
            problem(node, "\(field).messages", "an llm node takes messages (e.g. ${PROMPT_NODE.messages}) or a prompt text")
        case .prompt where parameters["prompt"] == nil && parameters["template"] == nil:
            problem(node, "\(field).prompt", "a prompt node takes a registry prompt (NAME@ALIAS) or an inline template")
        case .tool where (parameters["url"] == nil) == (parameters["command"] == nil):
            problem(node, "\(field).url", "a tool node calls a url (HTTP) or runs a command ([program, arg, ...]): one of them")
        case .tool where parameters["command"] != nil && ["method", "headers", "body"].contains(where: { parameters[$0] != nil }):
            problem(node, "\(field).command", "a command tool takes input, directory, environment and timeout; method, headers and body are for url tools")
        case .tool where parameters["url"] != nil && ["input", "directory", "environment"].contains(where: { parameters[$0] != nil }):
            problem(node, "\(field).url", "a url tool takes method, headers, body and timeout; input, directory and environment are for command tools")
        case .retrieve:
            if let m = parameters["mode"] {
                if let s = m.literalString, RetrievalMode(rawValue: s) != nil {} else { problem(v("mode"), "\(field).mode", "must be bm25, vector or hybrid") }
            }
        default: break
        }
        if let prompt = parameters["prompt"]?.literalString, kind == .prompt {
            do { _ = try PromptReference(parsing: prompt) } catch { problem(v("prompt"), "\(field).prompt", error.message) }
        }
        if named { nodeMarks[name] = node }
        return FlowSpec.Node(name: name, kind: kind, parameters: parameters, condition: condition, variants: variants, body: body, branch: branch)
    }

    func readCondition(_ node: Node, _ field: String) -> FlowSpec.Condition? {
        guard let raw = node.scalar?.string else {
            problem(node, field, "must be a condition such as \"${node.count} > 0\" or \"not ${check.result}\"")
            return nil
        }
        var text = raw.trimmingCharacters(in: .whitespaces)
        var negated = false
        if text.hasPrefix("not ") {
            negated = true
            text = String(text.dropFirst(4)).trimmingCharacters(in: .whitespaces)
        }
        // The operator outside references and quotes.
        var found: (FlowSpec.Condition.Operator, Range<String.Index>)?
        var depth = 0, quote: Character?
        var i = text.startIndex
        scan: while i < text.endIndex {
            let c = text[i]
            if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c } else if text[i...].hasPrefix("${") { depth += 1 } else if c == "}" && depth > 0 { depth -= 1 } else if depth == 0 {
                for op in FlowSpec.Condition.Operator.allCases {
                    let token = op == .contains ? " contains " : op.rawValue
                    if text[i...].hasPrefix(token) {
                        found = (op, i..<text.index(i, offsetBy: token.count))
                        break scan
                    }
                }
            }
            i = text.index(after: i)
        }
        func operand(_ s: Substring) -> FlowSpec.Value? {
            let t = s.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("${") {
                let v = convert(.string(t), field: field, at: node)
                if case .reference = v { return v }
                problem(node, field, "'\(t)' must be one reference")
                return nil
            }
            if (t.hasPrefix("\"") && t.hasSuffix("\"") || t.hasPrefix("'") && t.hasSuffix("'")) && t.count >= 2 { return .literal(.string(String(t.dropFirst().dropLast()))) }
            if t == "true" || t == "false" { return .literal(.bool(t == "true")) }
            if t == "null" { return .literal(.null) }
            if let d = Double(t) { return .literal(.number(d, raw: t)) }
            problem(node, field, "'\(t)' is neither a ${reference} nor a literal (a number, \"text\", true, false, null)")
            return nil
        }
        if let (op, range) = found {
            guard let left = operand(text[..<range.lowerBound]), let right = operand(text[range.upperBound...]) else { return nil }
            return FlowSpec.Condition(negated: negated, left: left, op: op, right: right, text: raw)
        }
        guard let left = operand(text[...]) else { return nil }
        return FlowSpec.Condition(negated: negated, left: left, op: nil, right: nil, text: raw)
    }

    /// A parameter's JSON with its `${...}` references found.
    func convert(_ value: JSONValue, field: String, at node: Node) -> FlowSpec.Value {
        switch value {
        case .string(let s) where s.contains("${"):
            var parts: [FlowSpec.Value.TemplatePart] = []
            var rest = s[...]
            while let open = rest.range(of: "${") {
                if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                    problem(node, field, "a reference is not closed: \(s)")
                    return .literal(value)
                }
                let inner = rest[open.upperBound..<close].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard let first = inner.first, !first.isEmpty, inner.allSatisfy({ !$0.isEmpty }) else {
                    problem(node, field, "'${\(rest[open.upperBound..<close])}' is not a reference (${inputs.NAME}, ${NODE.OUTPUT} or ${item})")
                    return .literal(value)
                }
                let ref = first == "item"
                    ? FlowSpec.Reference(source: "item", output: nil, path: Array(inner.dropFirst()))
                    : FlowSpec.Reference(source: first, output: inner.count > 1 ? inner[1] : nil, path: Array(inner.dropFirst(2)))
                parts.append(.reference(ref))
                rest = rest[rest.index(after: close)...]
            }
            if !rest.isEmpty { parts.append(.text(String(rest))) }
            if parts.count == 1, case .reference(let r) = parts[0] { return .reference(r) }
            return .template(parts)
        case .object(let o):
            return .object(o.mapValues { convert($0, field: field, at: node) })
        case .array(let a):
            return .list(a.map { convert($0, field: field, at: node) })
        default:
            return .literal(value)
        }
    }

    // MARK: Checks across the flow

    func check(inputs: [FlowSpec.Input], nodes: [FlowSpec.Node], outputs: [(name: String, value: FlowSpec.Value)], outputsNode: Node?) {
        var kinds: [String: FlowSpec.Kind] = [:]
        for (i, n) in nodes.enumerated() {
            if kinds[n.name] != nil { problem(nodeMarks[n.name], "nodes[\(i)].name", "'\(n.name)' names two nodes") }
            kinds[n.name] = n.kind
        }
        let inputTypes = Dictionary(inputs.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        func type(of ref: FlowSpec.Reference, field: String, at node: Node?, inMap: Bool) -> FlowSpec.ValueType? {
            switch ref.source {
            case "item":
                guard inMap else {
                    problem(node, field, "\(ref) is only known inside a map's node")
                    return nil
                }
                return .any
            case "inputs":
                guard let name = ref.output, let t = inputTypes[name] else {
                    problem(node, field, "\(ref): the flow has no such input (it has: \(inputs.map(\.name).joined(separator: ", ")))")
                    return nil
                }
                return ref.path.isEmpty ? t : .any
            default:
                guard let kind = kinds[ref.source] else {
                    problem(node, field, "\(ref): there is no node named \(ref.source)")
                    return nil
                }
                guard let out = ref.output, let t = FlowSpec.outputs[kind]?[out] else {
                    problem(node, field, "\(ref): a \(kind.rawValue) node's outputs are \((FlowSpec.outputs[kind] ?? [:]).keys.sorted().joined(separator: ", "))")
                    return nil
                }
                return ref.path.isEmpty ? t : .any
            }
        }
        func checkValue(_ v: FlowSpec.Value, expected: FlowSpec.ValueType, field: String, at node: Node?, inMap: Bool) {
            switch v {
            case .reference(let r):
                if let t = type(of: r, field: field, at: node, inMap: inMap), !expected.accepts(t) {
                    problem(node, field, "\(r) is \(t.withArticle); \(field) takes \(expected.withArticle)")
                }
            case .template(let parts):
                for case .reference(let r) in parts { _ = type(of: r, field: field, at: node, inMap: inMap) }
                if !expected.accepts(.string) { problem(node, field, "a text with references is a string; \(field) takes \(expected.withArticle)") }
            case .literal(let j):
                if !FlowValues.conforms(j, to: expected) { problem(node, field, "must be \(expected.withArticle)") }
            case .object(let o):
                if !expected.accepts(.object) { problem(node, field, "must be \(expected.withArticle)") }
                for (k, inner) in o { checkValue(inner, expected: .any, field: "\(field).\(k)", at: node, inMap: inMap) }
            case .list(let l):
                if !expected.accepts(.list) { problem(node, field, "must be \(expected.withArticle)") }
                for (i, inner) in l.enumerated() { checkValue(inner, expected: .any, field: "\(field)[\(i)]", at: node, inMap: inMap) }
            }
        }
        func checkNode(_ n: FlowSpec.Node, field: String, inMap: Bool) {
            let mark = nodeMarks[n.name]
            let specs = FlowSpec.parameters[n.kind] ?? [:]
            for (key, value) in n.parameters {
                checkValue(value, expected: specs[key]?.type ?? .any, field: "\(field).\(key)", at: mark, inMap: inMap)
            }
            for (variant, params) in n.variants {
                for (key, value) in params { checkValue(value, expected: specs[key]?.type ?? .any, field: "\(field).variants.\(variant).\(key)", at: mark, inMap: inMap) }
            }
            for r in n.condition?.references ?? [] { _ = type(of: r, field: "\(field).if", at: mark, inMap: inMap) }
            for r in n.branch?.references ?? [] { _ = type(of: r, field: "\(field).condition", at: mark, inMap: inMap) }
            if let body = n.body { checkNode(body.node, field: "\(field).node", inMap: true) }
            for r in n.allReferences where r.source == n.name { problem(mark, field, "\(r): a node cannot use its own outputs") }
        }
        for (i, n) in nodes.enumerated() { checkNode(n, field: "nodes[\(i)]", inMap: false) }
        for (name, value) in outputs { checkValue(value, expected: .any, field: "outputs.\(name)", at: outputsNode, inMap: false) }
        if outputs.isEmpty { problem(outputsNode, "outputs", "is required: what the flow answers (name: ${NODE.OUTPUT})") }
        // Cycles: a node that cannot be ordered after what it needs.
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        let byName = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func visit(_ name: String, _ path: [String]) {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let cycle = path.drop { $0 != name } + [name]
                problem(nodeMarks[name], "nodes", "a cycle: \(cycle.joined(separator: " -> "))")
                return
            }
            state[name] = 1
            for r in byName[name]?.allReferences ?? [] where byName[r.source] != nil && r.source != name { visit(r.source, path + [name]) }
            state[name] = 2
        }
        for n in nodes { visit(n.name, []) }
    }
}
