import Foundation
import LoomCore
import LoomSpec
import Yams

extension PipelineSpec {
    /// Parses and checks a spec; throws one error naming every problem found (line and field),
    /// so that nothing runs from a spec that cannot run whole.
    public static func parse(yaml text: String, file: String = "pipeline.yaml") throws(LoomError) -> PipelineSpec {
        let (spec, problems) = check(yaml: text)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// The spec as far as it reads, and every problem found in it.
    public static func check(yaml text: String) -> (PipelineSpec?, [SpecProblem]) {
        let reader = SpecReader()
        let spec = reader.read(text)
        if let spec { reader.checkWiring(spec) }
        // In the file's order (problems without a line first: they concern the whole file).
        return (spec, SpecProblem.ordered(reader.problems))
    }
}

/// Reads a pipeline spec node by node, keeping every node's line for the problems it finds.
final class SpecReader: SpecNodeReader {
    // MARK: - The document

    func read(_ text: String) -> PipelineSpec? {
        guard let (root, top) = document(text, what: "a mapping with pipeline, parameters, steps, schedules, triggers") else { return nil }
        unknownKeys(top, ["pipeline", "description", "parameters", "steps", "concurrency", "schedules", "triggers"], "")
        var spec = PipelineSpec(name: "", description: nil, parameters: [], steps: [], concurrency: nil, schedules: [], triggers: [])
        let byKey = Dictionary(top.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        if let p = byKey["pipeline"] {
            if let name = self.text(p.value, "pipeline") {
                if Self.isName(name) { spec.name = name } else { problem(p.value, "pipeline", "'\(name)' is not a name (a letter, then letters, digits, _ or -; at most 64)") }
            }
        } else {
            problem(root, "pipeline", "missing: name the pipeline (pipeline: NAME)")
        }
        if let d = byKey["description"] { spec.description = self.text(d.value, "description") }
        if let c = byKey["concurrency"] {
            if let n = int(c.value), n >= 1, n <= 1024 { spec.concurrency = n } else { problem(c.value, "concurrency", "must be a whole number from 1 to 1024") }
        }
        if let p = byKey["parameters"], let list = pairs(p.value, "parameters") {
            spec.parameters = list.compactMap { parameter($0) }
        }
        if let s = byKey["steps"] {
            if let list = pairs(s.value, "steps") {
                spec.steps = list.compactMap { step($0) }
                if list.isEmpty { problem(s.value, "steps", "no steps") }
            }
        } else {
            problem(root, "steps", "missing: a pipeline needs steps")
        }
        if let s = byKey["schedules"] {
            if let list = s.value.sequence {
                for (i, item) in list.enumerated() { if let x = schedule(item, "schedules[\(i)]") { spec.schedules.append(x) } }
            } else {
                problem(s.value, "schedules", "must be a list")
            }
        }
        if let t = byKey["triggers"] {
            if let list = t.value.sequence {
                for (i, item) in list.enumerated() { if let x = trigger(item, "triggers[\(i)]") { spec.triggers.append(x) } }
            } else {
                problem(t.value, "triggers", "must be a list")
            }
        }
        return spec
    }

    // MARK: - Parameters

    func parameter(_ p: Pair) -> PipelineSpec.Parameter? {
        let field = "parameters.\(p.key)"
        guard Self.isName(p.key) else {
            problem(p.keyNode, field, "'\(p.key)' is not a name")
            return nil
        }
        // `name: value` (the type is the value's), or `name: {type:, default:, description:}`.
        guard p.value.mapping != nil else {
            guard let value = scalarValue(p.value) else {
                problem(p.value, field, "must be a value or a mapping with type, default and description")
                return nil
            }
            return .init(name: p.key, type: value.type, defaultValue: value, description: nil, line: p.keyNode.mark?.line ?? 0)
        }
        guard let list = pairs(p.value, field) else { return nil }
        unknownKeys(list, ["type", "default", "description"], field)
        let byKey = Dictionary(list.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let typeNode = byKey["type"] else {
            problem(p.value, field, "needs a type (\(ValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        guard let t = typeNode.string, let type = ValueType(rawValue: t) else {
            problem(typeNode, "\(field).type", "unknown type (expected one of: \(ValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        var value: ParameterValue?
        if let d = byKey["default"] { value = typed(d, type, "\(field).default") }
        return .init(
            name: p.key, type: type, defaultValue: value, description: byKey["description"].flatMap { text($0, "\(field).description") },
            line: p.keyNode.mark?.line ?? 0)
    }

    /// A YAML scalar as the parameter value its tag says.
    func scalarValue(_ node: Node) -> ParameterValue? {
        switch scalar(node) {
        case .bool(let b)?: return .boolean(b)
        case .int(let i)?: return .integer(i)
        case .float(let d)?: return .number(d)
        case .string(let s)?: return .string(s)
        case .null?, nil: return nil
        }
    }

    /// A value of `type` (an integer is accepted as a number; a dataset, model or file is text).
    func typed(_ node: Node, _ type: ValueType, _ field: String) -> ParameterValue? {
        guard let v = scalarValue(node) else {
            problem(node, field, "must be \(type.article)")
            return nil
        }
        switch (type, v) {
        case (.number, .integer(let i)): return .number(Double(i))
        case (.dataset, .string), (.model, .string), (.file, .string), (.string, .string): return v
        case (.string, _): return .string(node.string ?? v.text)
        default:
            if type.accepts(v.type) { return v }
            problem(node, field, "must be \(type.article), not \(v.type.article)")
            return nil
        }
    }

    func parameterValues(_ node: Node, _ field: String) -> [String: ParameterValue] {
        guard let list = pairs(node, field) else { return [:] }
        var out: [String: ParameterValue] = [:]
        for p in list {
            if let v = scalarValue(p.value) { out[p.key] = v } else { problem(p.value, "\(field).\(p.key)", "must be a value") }
        }
        return out
    }

    // MARK: - Steps

    func step(_ p: Pair) -> PipelineSpec.Step? {
        let field = "steps.\(p.key)"
        guard Self.isName(p.key) else {
            problem(p.keyNode, field, "'\(p.key)' is not a step name (a letter, then letters, digits, _ or -)")
            return nil
        }
        guard let list = pairs(p.value, field) else { return nil }
        unknownKeys(
            list, ["kind", "description", "inputs", "outputs", "with", "command", "code", "environment", "needs", "cache", "retries",
                   "retry_delay", "timeout"], field)
        let byKey = Dictionary(list.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let kindNode = byKey["kind"] else {
            problem(p.value, field, "needs a kind (\(StepKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        guard let k = kindNode.string, let kind = StepKind(rawValue: k) else {
            problem(kindNode, "\(field).kind", "unknown step kind '\(kindNode.string ?? "")' (expected one of: \(StepKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        var step = PipelineSpec.Step(
            name: p.key, kind: kind, inputs: [], outputs: kind.outputs ?? [], options: [:], command: nil, code: [], environment: [:],
            needs: [], cache: true, retries: 0, retryDelay: 1, timeout: nil, line: p.keyNode.mark?.line ?? 0)
        if let n = byKey["inputs"], let inputs = pairs(n, "\(field).inputs") {
            step.inputs = inputs.compactMap { input($0, "\(field).inputs.\($0.key)") }
        }
        if let n = byKey["outputs"] {
            if kind != .command {
                problem(n, "\(field).outputs", "a \(kind.rawValue) step's outputs are fixed (\((kind.outputs ?? []).map(\.name).joined(separator: ", ")))")
            } else if let outputs = pairs(n, "\(field).outputs") {
                step.outputs = outputs.compactMap { o in
                    guard Self.isName(o.key) else {
                        problem(o.keyNode, "\(field).outputs.\(o.key)", "not a name")
                        return nil
                    }
                    let typeNode = o.value.mapping?["type"] ?? o.value
                    guard let t = typeNode.string, let type = ValueType(rawValue: t) else {
                        problem(o.value, "\(field).outputs.\(o.key)", "unknown type (expected one of: \(ValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
                        return nil
                    }
                    return .init(name: o.key, type: type)
                }
            }
        }
        if let n = byKey["with"] {
            if kind == .command {
                problem(n, "\(field).with", "a command step takes its options on its command line")
            } else if let options = pairs(n, "\(field).with") {
                for o in options { step.options[o.key] = json(o.value) }
                let allowed = kind.options.allowed.sorted()
                for o in options where !kind.options.allowed.contains(o.key) {
                    problem(o.keyNode, "\(field).with.\(o.key)", "unknown option for a \(kind.rawValue) step (expected one of: \(allowed.joined(separator: ", ")))")
                }
            }
        }
        for required in kind.options.required.sorted() where step.options[required] == nil {
            problem(p.value, "\(field).with.\(required)", "missing: a \(kind.rawValue) step needs it")
        }
        if let n = byKey["command"] {
            if kind != .command {
                problem(n, "\(field).command", "only command steps run a command")
            } else {
                step.command = text(n, "\(field).command")
            }
        } else if kind == .command {
            problem(p.value, "\(field).command", "missing: a command step needs a command")
        }
        if let n = byKey["code"] {
            if let seq = n.sequence {
                step.code = seq.compactMap { text($0, "\(field).code") }
            } else if let one = text(n, "\(field).code") {
                step.code = [one]
            }
            for path in step.code where path.hasPrefix("/") || path.split(separator: "/").contains("..") {
                problem(n, "\(field).code", "'\(path)' must be a path inside the spec's folder")
            }
        }
        if let n = byKey["environment"], let env = pairs(n, "\(field).environment") {
            for e in env {
                guard e.key.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                    problem(e.keyNode, "\(field).environment.\(e.key)", "not a variable name")
                    continue
                }
                if let v = e.value.scalar.map({ _ in e.value.string ?? "" }) { step.environment[e.key] = v } else {
                    problem(e.value, "\(field).environment.\(e.key)", "must be a value")
                }
            }
        }
        if let n = byKey["needs"] {
            if let seq = n.sequence {
                step.needs = seq.compactMap { text($0, "\(field).needs") }
            } else if let one = text(n, "\(field).needs") {
                step.needs = [one]
            }
        }
        if let n = byKey["cache"] {
            if case .bool(let b)? = scalar(n) { step.cache = b } else { problem(n, "\(field).cache", "must be true or false") }
        }
        if let n = byKey["retries"] {
            if let r = int(n), (0...20).contains(r) { step.retries = r } else { problem(n, "\(field).retries", "must be a whole number from 0 to 20") }
        }
        if let n = byKey["retry_delay"] {
            if let d = duration(n), d <= 3600 { step.retryDelay = d } else { problem(n, "\(field).retry_delay", "must be a duration up to 1h (such as 5s, 2m)") }
        }
        if let n = byKey["timeout"] {
            if let d = duration(n), d > 0 { step.timeout = d } else { problem(n, "\(field).timeout", "must be a duration (such as 90s, 10m, 2h)") }
        }
        return step
    }

    /// `${{ steps.X.outputs.Y }}`, `${{ parameters.P }}`, or a literal; or the mapping form
    /// `{from: ..., type: ...}` that also declares the input's type.
    func input(_ p: Pair, _ field: String) -> PipelineSpec.Input? {
        var sourceNode = p.value
        var type: ValueType?
        if p.value.mapping != nil, let m = pairs(p.value, field) {
            unknownKeys(m, ["from", "type"], field)
            guard let from = m.first(where: { $0.key == "from" }) else {
                problem(p.value, field, "needs from: what feeds the input")
                return nil
            }
            sourceNode = from.value
            if let t = m.first(where: { $0.key == "type" }) {
                guard let name = t.value.string, let parsed = ValueType(rawValue: name) else {
                    problem(t.value, "\(field).type", "unknown type (expected one of: \(ValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
                    return nil
                }
                type = parsed
            }
        }
        guard let raw = text(sourceNode, field) else { return nil }
        let line = sourceNode.mark?.line ?? 0
        let refs = References.find(in: raw)
        let source: PipelineSpec.Source
        if refs.count == 1, refs[0].range == raw.startIndex..<raw.endIndex {
            let parts = refs[0].path
            if parts.count == 4, parts[0] == "steps", parts[2] == "outputs" {
                source = .step(parts[1], output: parts[3])
            } else if parts.count == 2, parts[0] == "parameters" {
                source = .parameter(parts[1])
            } else {
                problem(line: line, field, "'${{ \(parts.joined(separator: ".")) }}' names no output or parameter (steps.STEP.outputs.NAME, parameters.NAME)")
                return nil
            }
        } else if !refs.isEmpty || raw.contains("${{") {
            problem(line: line, field, "an input is one reference (${{ ... }}) or a value, not text around references")
            return nil
        } else {
            source = .literal(raw)
        }
        return .init(name: p.key, source: source, type: type, line: line)
    }

    // MARK: - Schedules and triggers

    func schedule(_ node: Node, _ field: String) -> PipelineSpec.Schedule? {
        guard let list = pairs(node, field) else { return nil }
        unknownKeys(list, ["cron", "parameters"], field)
        guard let c = list.first(where: { $0.key == "cron" }) else {
            problem(node, field, "needs cron: a five-field schedule such as '0 3 * * *'")
            return nil
        }
        guard let expression = text(c.value, "\(field).cron") else { return nil }
        let cron: CronSchedule
        do {
            cron = try CronSchedule(parsing: expression)
        } catch {
            problem(c.value, "\(field).cron", error.message)
            return nil
        }
        let values = list.first { $0.key == "parameters" }.map { parameterValues($0.value, "\(field).parameters") } ?? [:]
        return .init(cron: cron, parameters: values, line: node.mark?.line ?? 0)
    }

    func trigger(_ node: Node, _ field: String) -> PipelineSpec.Trigger? {
        guard let list = pairs(node, field) else { return nil }
        unknownKeys(list, ["dataset", "webhook", "alert", "parameter", "parameters"], field)
        let events = list.filter { ["dataset", "webhook", "alert"].contains($0.key) }
        guard events.count == 1, let e = events.first, let name = text(e.value, "\(field).\(e.key)") else {
            if events.count != 1 { problem(node, field, "needs exactly one of dataset, webhook, alert") }
            return nil
        }
        let parameter = list.first { $0.key == "parameter" }.flatMap { text($0.value, "\(field).parameter") }
        let event: PipelineSpec.Trigger.Event
        switch e.key {
        case "dataset": event = .dataset(name, parameter: parameter)
        case "webhook":
            guard Self.isName(name) else {
                problem(e.value, "\(field).webhook", "'\(name)' is not a name")
                return nil
            }
            event = .webhook(name)
        default: event = .alert(name)
        }
        if parameter != nil, e.key != "dataset" {
            problem(node, "\(field).parameter", "only a dataset trigger passes its version to a parameter")
        }
        let values = list.first { $0.key == "parameters" }.map { parameterValues($0.value, "\(field).parameters") } ?? [:]
        return .init(event: event, parameters: values, line: node.mark?.line ?? 0)
    }
}

/// `${{ a.b.c }}` references in text.
enum References {
    struct Found {
        var range: Range<String.Index>
        var path: [String]
    }

    static func find(in text: String) -> [Found] {
        // Over the UTF-8 bytes: `$`, `{`, `}` and `.` are ASCII, so byte positions are
        // character boundaries.
        let u = text.utf8
        guard u.contains(0x24) else { return [] }
        var out: [Found] = []
        var i = u.startIndex
        while i != u.endIndex {
            guard u[i] == 0x24, let b1 = u.index(i, offsetBy: 1, limitedBy: u.endIndex), b1 != u.endIndex, u[b1] == 0x7B,
                  let b2 = u.index(b1, offsetBy: 1, limitedBy: u.endIndex), b2 != u.endIndex, u[b2] == 0x7B else {
                i = u.index(after: i)
                continue
            }
            var j = u.index(after: b2)
            var close: String.Index?
            while j != u.endIndex {
                if u[j] == 0x7D, let k = u.index(j, offsetBy: 1, limitedBy: u.endIndex), k != u.endIndex, u[k] == 0x7D {
                    close = j
                    break
                }
                j = u.index(after: j)
            }
            guard let close else { break }
            let inner = text[u.index(after: b2)..<close].split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            let end = u.index(close, offsetBy: 2)
            out.append(Found(range: i..<end, path: inner.split(separator: ".", omittingEmptySubsequences: false).map(String.init)))
            i = end
        }
        return out
    }
}
