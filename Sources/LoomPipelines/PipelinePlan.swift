import LoomCore
import LoomSpec

/// The order a pipeline's steps run in: each step after the steps its inputs come from and the
/// steps it `needs`. Independent steps share a level and may run at once.
public struct PipelinePlan: Sendable {
    public let spec: PipelineSpec
    /// Step indices (into `spec.steps`) in an order that runs every step after its dependencies:
    /// level by level, in the file's order within a level.
    public let order: [Int]
    /// The level of each step: 0 for steps that depend on nothing, else one more than the
    /// highest level among its dependencies.
    public let levels: [Int]
    /// For each step, the steps it depends on (sorted, no repeats).
    public let dependencies: [[Int]]
    /// For each step, the steps that depend on it (sorted).
    public let dependents: [[Int]]

    public var levelCount: Int { (levels.max() ?? -1) + 1 }

    /// Plans a spec `PipelineSpec.parse` accepted. Throws for a spec it did not check: a step
    /// that is not there, or a cycle.
    public init(_ spec: PipelineSpec) throws(LoomError) {
        var problems: [SpecProblem] = []
        guard let plan = Self.make(spec, problems: &problems) else {
            throw .invalidParameter(problems.map(\.description).joined(separator: "; "))
        }
        self = plan
    }

    private init(spec: PipelineSpec, order: [Int], levels: [Int], dependencies: [[Int]], dependents: [[Int]]) {
        self.spec = spec
        self.order = order
        self.levels = levels
        self.dependencies = dependencies
        self.dependents = dependents
    }

    /// Kahn's algorithm over the steps' edges, O(steps + edges); a cycle is named step by step.
    static func make(_ spec: PipelineSpec, problems: inout [SpecProblem]) -> PipelinePlan? {
        let steps = spec.steps
        var index: [String: Int] = [:]
        index.reserveCapacity(steps.count)
        for (i, s) in steps.enumerated() { index[s.name] = i }
        var dependencies = [[Int]](repeating: [], count: steps.count)
        var unknown = false
        for (i, s) in steps.enumerated() {
            var deps: [Int] = []
            for input in s.inputs {
                if case .step(let name, _) = input.source {
                    guard let j = index[name] else { unknown = true; continue }
                    deps.append(j)
                }
            }
            for name in s.needs {
                guard let j = index[name] else { unknown = true; continue }
                deps.append(j)
            }
            if deps.count > 1 {
                deps.sort()
                var unique: [Int] = []
                unique.reserveCapacity(deps.count)
                for d in deps where unique.last != d { unique.append(d) }
                deps = unique
            }
            dependencies[i] = deps
        }
        if unknown {
            problems.append(SpecProblem(line: nil, field: "steps", message: "a step depends on a step that is not there"))
            return nil
        }
        var dependents = [[Int]](repeating: [], count: steps.count)
        var waiting = [Int](repeating: 0, count: steps.count)
        for (i, deps) in dependencies.enumerated() {
            waiting[i] = deps.count
            for d in deps { dependents[d].append(i) }
        }
        var levels = [Int](repeating: 0, count: steps.count)
        var order: [Int] = []
        order.reserveCapacity(steps.count)
        var current = (0..<steps.count).filter { waiting[$0] == 0 }
        var level = 0
        while !current.isEmpty {
            var next: [Int] = []
            for i in current {
                levels[i] = level
                order.append(i)
                for d in dependents[i] {
                    waiting[d] -= 1
                    if waiting[d] == 0 { next.append(d) }
                }
            }
            next.sort()
            current = next
            level += 1
        }
        guard order.count == steps.count else {
            let cycle = Self.cycle(among: Set((0..<steps.count).filter { waiting[$0] > 0 }), dependencies)
            let names = (cycle + [cycle[0]]).map { steps[$0].name }
            problems.append(SpecProblem(
                line: steps[cycle[0]].line, field: "steps.\(steps[cycle[0]].name)",
                message: "the steps form a cycle: \(names.joined(separator: " → ")) (each depends on the one before)"))
            return nil
        }
        return PipelinePlan(spec: spec, order: order, levels: levels, dependencies: dependencies, dependents: dependents)
    }

    /// One cycle among steps that never became ready (each of them waits on another of them),
    /// in dependency order: each depends on the one before.
    private static func cycle(among stuck: Set<Int>, _ dependencies: [[Int]]) -> [Int] {
        // Walk from any stuck step to a stuck dependency until a step repeats.
        var seen: [Int: Int] = [:]
        var path: [Int] = []
        var at = stuck.min()!
        while seen[at] == nil {
            seen[at] = path.count
            path.append(at)
            at = dependencies[at].first { stuck.contains($0) }!
        }
        // Starting from the cycle's first step in the file.
        let cycle = Array(path[seen[at]!...].reversed())
        let first = cycle.indices.min { cycle[$0] < cycle[$1] }!
        return Array(cycle[first...] + cycle[..<first])
    }
}

extension SpecReader {
    /// Checks what only the whole spec tells: references between steps and parameters, types,
    /// required inputs, and cycles.
    func checkWiring(_ spec: PipelineSpec) {
        let stepsByName = Dictionary(spec.steps.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let parameters = Dictionary(spec.parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var wired = true
        for step in spec.steps {
            let field = "steps.\(step.name)"
            if let signature = step.kind.inputs {
                for input in step.inputs where !signature.contains(where: { $0.name == input.name }) {
                    let names = signature.map(\.name)
                    problem(line: input.line, "\(field).inputs.\(input.name)",
                            names.isEmpty ? "a \(step.kind.rawValue) step takes no inputs" : "unknown input for a \(step.kind.rawValue) step (expected: \(names.joined(separator: ", ")))")
                }
                for s in signature where s.required && step.input(s.name) == nil {
                    problem(line: step.line, "\(field).inputs.\(s.name)", "missing: a \(step.kind.rawValue) step needs \(s.type.article)")
                }
            }
            for input in step.inputs {
                let expected = input.type ?? step.kind.inputs?.first(where: { $0.name == input.name })?.type
                let inputField = "\(field).inputs.\(input.name)"
                var given: ValueType?
                switch input.source {
                case .step(let name, let output):
                    guard let source = stepsByName[name] else {
                        problem(line: input.line, inputField, "unwired: no step named '\(name)'")
                        wired = false
                        continue
                    }
                    guard name != step.name else {
                        problem(line: input.line, inputField, "a step cannot take its own output")
                        wired = false
                        continue
                    }
                    guard let out = source.output(output) else {
                        let names = source.outputs.map(\.name)
                        problem(line: input.line, inputField,
                                "unwired: step '\(name)' has no output '\(output)'" + (names.isEmpty ? " (it has none)" : " (it has: \(names.joined(separator: ", ")))"))
                        continue
                    }
                    given = out.type
                case .parameter(let name):
                    guard let p = parameters[name] else {
                        problem(line: input.line, inputField, "unknown parameter '\(name)'")
                        continue
                    }
                    given = p.type
                case .literal:
                    given = nil
                }
                if let expected, let given, !expected.accepts(given) {
                    problem(line: input.line, inputField, "type mismatch: expects \(expected.article), but \(input.source) is \(given.article)")
                }
            }
            for name in step.needs {
                if stepsByName[name] == nil {
                    problem(line: step.line, "\(field).needs", "no step named '\(name)'")
                    wired = false
                } else if name == step.name {
                    problem(line: step.line, "\(field).needs", "a step cannot need itself")
                    wired = false
                }
            }
            // References in options and on the command line.
            for (key, value) in step.options.sorted(by: { $0.key < $1.key }) {
                for ref in Self.strings(in: value).flatMap({ References.find(in: $0) }) {
                    checkReference(ref.path, allowed: ["parameters"], step: step, parameters: parameters, field: "\(field).with.\(key)")
                }
            }
            if let command = step.command {
                for ref in References.find(in: command) {
                    checkReference(ref.path, allowed: ["inputs", "outputs", "parameters"], step: step, parameters: parameters, field: "\(field).command")
                }
            }
        }
        for (i, s) in spec.schedules.enumerated() {
            checkValues(s.parameters, parameters, "schedules[\(i)].parameters", line: s.line)
            for p in spec.parameters where p.defaultValue == nil && s.parameters[p.name] == nil {
                problem(line: s.line, "schedules[\(i)].parameters.\(p.name)", "missing: the parameter has no default, so a scheduled run needs one")
            }
        }
        for (i, t) in spec.triggers.enumerated() {
            checkValues(t.parameters, parameters, "triggers[\(i)].parameters", line: t.line)
            if case .dataset(_, let parameter?) = t.event {
                if let p = parameters[parameter] {
                    if p.type != .dataset { problem(line: t.line, "triggers[\(i)].parameter", "'\(parameter)' is \(p.type.article) parameter, not a dataset one") }
                } else {
                    problem(line: t.line, "triggers[\(i)].parameter", "unknown parameter '\(parameter)'")
                }
            }
        }
        if wired {
            var found: [SpecProblem] = []
            _ = PipelinePlan.make(spec, problems: &found)
            for p in found { problem(line: p.line, p.field, p.message) }
        }
    }

    private func checkReference(_ path: [String], allowed: Set<String>, step: PipelineSpec.Step, parameters: [String: PipelineSpec.Parameter], field: String) {
        let text = "${{ \(path.joined(separator: ".")) }}"
        guard path.count == 2, allowed.contains(path[0]) else {
            problem(line: step.line, field, "\(text) is not a reference this field takes (\(allowed.sorted().map { "\($0).NAME" }.joined(separator: ", ")))")
            return
        }
        switch path[0] {
        case "parameters":
            if parameters[path[1]] == nil { problem(line: step.line, field, "\(text): unknown parameter '\(path[1])'") }
        case "inputs":
            if step.input(path[1]) == nil { problem(line: step.line, field, "\(text): the step has no input '\(path[1])'") }
        default:
            if step.output(path[1]) == nil { problem(line: step.line, field, "\(text): the step has no output '\(path[1])'") }
        }
    }

    private func checkValues(_ values: [String: ParameterValue], _ parameters: [String: PipelineSpec.Parameter], _ field: String, line: Int) {
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let p = parameters[name] else {
                problem(line: line, "\(field).\(name)", "unknown parameter '\(name)'")
                continue
            }
            let given: ValueType = [.dataset, .model, .file].contains(p.type) && value.type == .string ? p.type : value.type
            if !p.type.accepts(given) { problem(line: line, "\(field).\(name)", "type mismatch: the parameter is \(p.type.article), the value \(given.article)") }
        }
    }

    static func strings(in value: JSONValue) -> [String] {
        switch value {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap { strings(in: $0) }
        case .object(let o): return o.values.flatMap { strings(in: $0) }
        default: return []
        }
    }
}

extension PipelineSpec {
    /// The parameters of a run: the defaults, then `given` (checked: known names, the right
    /// types). Text is accepted for any type and read as it (`--param min_auc=0.8`).
    public func resolveParameters(_ given: [String: ParameterValue]) throws(LoomError) -> [String: ParameterValue] {
        var out: [String: ParameterValue] = [:]
        for p in parameters { out[p.name] = p.defaultValue }
        for (name, value) in given.sorted(by: { $0.key < $1.key }) {
            guard let p = parameter(name) else {
                let known = parameters.map(\.name)
                throw .invalidParameter("unknown parameter '\(name)'" + (known.isEmpty ? " (the pipeline has none)" : " (it has: \(known.joined(separator: ", ")))"))
            }
            out[name] = try Self.convert(value, to: p.type, name: name)
        }
        let missing = parameters.filter { out[$0.name] == nil }.map(\.name)
        guard missing.isEmpty else { throw .invalidParameter("parameters without a value: \(missing.joined(separator: ", ")) (give them with --param NAME=VALUE)") }
        return out
    }

    public static func convert(_ value: ParameterValue, to type: ValueType, name: String) throws(LoomError) -> ParameterValue {
        switch (type, value) {
        case (.string, _), (.dataset, .string), (.model, .string), (.file, .string): return .string(value.text)
        case (.number, .number), (.integer, .integer), (.boolean, .boolean): return value
        case (.number, .integer(let i)): return .number(Double(i))
        case (.number, .string(let s)): if let d = Double(s), d.isFinite { return .number(d) }
        case (.integer, .string(let s)): if let i = Int(s) { return .integer(i) }
        case (.boolean, .string(let s)):
            switch s.lowercased() {
            case "true": return .boolean(true)
            case "false": return .boolean(false)
            default: break
            }
        default: break
        }
        throw .invalidParameter("parameter '\(name)' is \(type.article); '\(value.text)' is not")
    }
}
