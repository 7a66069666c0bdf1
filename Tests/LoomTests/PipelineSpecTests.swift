import Foundation
import LoomCore
import LoomPipelines
import LoomSpec
import Testing

@Suite("Pipeline specs: parsing, checking, planning")
struct PipelineSpecTests {
    static let example = """
        pipeline: churn
        description: train two candidates and register the better one
        parameters:
          customers: {type: dataset, default: customers@latest}
          min_auc: {type: number, default: 0.75}
          seed: 7
        concurrency: 2
        steps:
          ingest:
            kind: ingest
            with: {path: data/customers.csv, dataset: customers}
          check:
            kind: validate
            inputs: {data: "${{ steps.ingest.outputs.data }}"}
            with: {expectations: expectations.yaml}
          split:
            kind: split
            inputs: {data: "${{ steps.check.outputs.data }}"}
            with: {seed: "${{ parameters.seed }}", stratify: churned}
          gbdt:
            kind: train
            inputs:
              data: "${{ steps.split.outputs.train }}"
              validation: "${{ steps.split.outputs.validation }}"
            with: {target: churned, model: gbdt}
          sklearn:
            kind: command
            command: python train.py --train ${{ inputs.train }} --out ${{ outputs.model }} --seed ${{ parameters.seed }}
            code: [train.py]
            inputs: {train: "${{ steps.split.outputs.train }}"}
            outputs: {model: model, auc: number}
            environment: {PYTHONHASHSEED: 0}
            retries: 2
            retry_delay: 5s
            timeout: 10m
          gate:
            kind: gate
            inputs: {model: "${{ steps.gbdt.outputs.model }}"}
            with:
              metrics: {validation_roc_auc: {min: "${{ parameters.min_auc }}"}}
              compare: {alias: production, metric: validation_roc_auc}
          register:
            kind: register
            inputs: {model: "${{ steps.gbdt.outputs.model }}"}
            needs: [gate, sklearn]
            with: {name: churn, alias: challenger}
        schedules:
          - cron: "0 3 * * 1-5"
            parameters: {min_auc: 0.8}
        triggers:
          - {dataset: customers, parameter: customers}
          - {webhook: retrain}
        """

    @Test("a full spec reads into steps, wiring, options, schedules and triggers, and plans by levels")
    func example() throws {
        let spec = try PipelineSpec.parse(yaml: Self.example)
        #expect(spec.name == "churn")
        #expect(spec.concurrency == 2)
        #expect(spec.parameters.map(\.name) == ["customers", "min_auc", "seed"])
        #expect(spec.parameter("seed")?.type == .integer && spec.parameter("seed")?.defaultValue == .integer(7))
        #expect(spec.steps.map(\.name) == ["ingest", "check", "split", "gbdt", "sklearn", "gate", "register"])
        let sklearn = try #require(spec.step("sklearn"))
        #expect(sklearn.kind == .command)
        #expect(sklearn.outputs.map(\.name) == ["model", "auc"] && sklearn.outputs.map(\.type) == [.model, .number])
        #expect(sklearn.input("train")?.source == .step("split", output: "train"))
        #expect(sklearn.code == ["train.py"] && sklearn.environment == ["PYTHONHASHSEED": "0"])
        #expect(sklearn.retries == 2 && sklearn.retryDelay == 5 && sklearn.timeout == 600)
        #expect(spec.step("split")?.outputs.map(\.name) == ["train", "validation", "test"])
        #expect(spec.step("register")?.needs == ["gate", "sklearn"])
        #expect(spec.schedules.first?.cron.expression == "0 3 * * 1-5")
        #expect(spec.schedules.first?.parameters == ["min_auc": .number(0.8)])
        #expect(spec.triggers.map(\.event) == [.dataset("customers", parameter: "customers"), .webhook("retrain")])

        let plan = try PipelinePlan(spec)
        let names = plan.order.map { spec.steps[$0].name }
        #expect(names == ["ingest", "check", "split", "gbdt", "sklearn", "gate", "register"])
        #expect(plan.levels == [0, 1, 2, 3, 3, 4, 5])
        #expect(plan.levelCount == 6)
        let register = spec.steps.firstIndex { $0.name == "register" }!
        #expect(plan.dependencies[register].map { spec.steps[$0].name } == ["gbdt", "sklearn", "gate"])
        #expect(plan.dependents[2].map { spec.steps[$0].name } == ["gbdt", "sklearn"])
    }

    /// The problems of a spec that differs from the example by `edit`.
    static func problems(_ edit: (String) -> String) -> [SpecProblem] {
        PipelineSpec.check(yaml: edit(example)).1
    }

    static func line(of text: String, in yaml: String) -> Int {
        (yaml.components(separatedBy: "\n").firstIndex { $0.contains(text) } ?? -1) + 1
    }

    @Test("an invalid spec is refused before anything runs, each problem with its line and field", arguments: [
        // (what to replace, with what, field, words of the message)
        ("kind: split", "kind: splat", "steps.split.kind", "unknown step kind 'splat'"),
        ("inputs: {data: \"${{ steps.check.outputs.data }}\"}", "inputs: {data: \"${{ steps.nothing.outputs.data }}\"}", "steps.split.inputs.data", "unwired: no step named 'nothing'"),
        ("\"${{ steps.split.outputs.train }}\"\n      validation", "\"${{ steps.split.outputs.training }}\"\n      validation", "steps.gbdt.inputs.data", "has no output 'training'"),
        ("inputs: {model: \"${{ steps.gbdt.outputs.model }}\"}\n    with:\n      metrics", "inputs: {model: \"${{ steps.split.outputs.test }}\"}\n    with:\n      metrics", "steps.gate.inputs.model", "type mismatch: expects a model, but steps.split.outputs.test is a dataset"),
        ("cron: \"0 3 * * 1-5\"", "cron: \"0 25 * * *\"", "schedules[0].cron", "cron hour field '25' is not valid"),
        ("cron: \"0 3 * * 1-5\"", "cron: \"0 3 30 2 *\"", "schedules[0].cron", "never runs"),
        ("parameters: {min_auc: 0.8}", "parameters: {min_acu: 0.8}", "schedules[0].parameters.min_acu", "unknown parameter 'min_acu'"),
        ("parameters: {min_auc: 0.8}", "parameters: {min_auc: high}", "schedules[0].parameters.min_auc", "type mismatch"),
        ("--seed ${{ parameters.seed }}", "--seed ${{ parameters.sed }}", "steps.sklearn.command", "unknown parameter 'sed'"),
        ("--out ${{ outputs.model }}", "--out ${{ outputs.weights }}", "steps.sklearn.command", "no output 'weights'"),
        ("with: {target: churned, model: gbdt}", "with: {model: gbdt}", "steps.gbdt.with.target", "missing"),
        ("with: {target: churned, model: gbdt}", "with: {target: churned, model: gbdt, depth: 3}", "steps.gbdt.with.depth", "unknown option"),
        ("retries: 2", "retries: -1", "steps.sklearn.retries", "0 to 20"),
        ("timeout: 10m", "timeout: soon", "steps.sklearn.timeout", "duration"),
        ("needs: [gate, sklearn]", "needs: [gate, sklearn, nobody]", "steps.register.needs", "no step named 'nobody'"),
        ("{dataset: customers, parameter: customers}", "{dataset: customers, parameter: min_auc}", "triggers[0].parameter", "not a dataset one"),
        ("    inputs: {data: \"${{ steps.ingest.outputs.data }}\"}\n", "", "steps.check.inputs.data", "missing: a validate step needs a dataset"),
        ("min_auc: {type: number, default: 0.75}", "min_auc: {type: number, default: yes please}", "parameters.min_auc.default", "must be a number"),
        ("min_auc: {type: number, default: 0.75}", "min_auc: {type: decimal}", "parameters.min_auc.type", "unknown type"),
    ])
    func refused(replace: String, with replacement: String, field: String, message: String) throws {
        #expect(Self.example.contains(replace), "the example has \(replace)")
        let edited = Self.example.replacingOccurrences(of: replace, with: replacement)
        let problems = PipelineSpec.check(yaml: edited).1
        let hit = problems.first { $0.field == field }
        #expect(hit != nil, "no problem at \(field): \(problems)")
        #expect(hit?.message.contains(message) == true, "\(hit?.message ?? "")")
        #expect(hit?.line != nil && hit!.line! > 0)
        // The error names the file, line and field.
        let error = #expect(throws: LoomError.self) { try PipelineSpec.parse(yaml: edited, file: "churn.yaml") }
        #expect(error?.code == .invalidParameter)
        #expect(error?.message.hasPrefix("churn.yaml: ") == true)
        #expect(error?.message.contains(field) == true)
    }

    @Test("problems name the line they are on")
    func lines() throws {
        let edited = Self.example.replacingOccurrences(of: "kind: split", with: "kind: splat")
        let problem = try #require(PipelineSpec.check(yaml: edited).1.first { $0.field == "steps.split.kind" })
        #expect(problem.line == Self.line(of: "kind: splat", in: edited))
        let cron = Self.example.replacingOccurrences(of: "0 3 * * 1-5", with: "61 * * * *")
        let c = try #require(PipelineSpec.check(yaml: cron).1.first)
        #expect(c.line == Self.line(of: "61 * * * *", in: cron))
    }

    @Test("a cycle is named step by step, on the line of one of its steps")
    func cycle() throws {
        let yaml = """
            pipeline: loop
            steps:
              a:
                kind: command
                command: run a
                inputs: {x: "${{ steps.c.outputs.out }}"}
                outputs: {out: file}
              b:
                kind: command
                command: run b
                inputs: {x: "${{ steps.a.outputs.out }}"}
                outputs: {out: file}
              c:
                kind: command
                command: run c
                needs: [b]
                outputs: {out: file}
              d:
                kind: command
                command: run d
            """
        let problems = PipelineSpec.check(yaml: yaml).1
        #expect(problems.count == 1)
        let p = try #require(problems.first)
        #expect(p.message.contains("cycle"))
        // Each depends on the one before: a -> b -> c -> a.
        #expect(p.message.contains("a → b → c → a"), "\(p.message)")
        #expect(p.line == Self.line(of: "  a:", in: yaml))
        #expect(throws: LoomError.self) { try PipelineSpec.parse(yaml: yaml) }
    }

    @Test("several problems are reported at once; unknown keys and keys given twice too")
    func several() throws {
        let yaml = """
            pipeline: two
            steps:
              a:
                kind: ingest
                with: {path: x.csv, dataset: x, format: csv}
                retry: 3
              b:
                kind: nope
            """
        let problems = PipelineSpec.check(yaml: yaml).1
        let fields = Set(problems.map(\.field))
        #expect(fields == ["steps.a.with.format", "steps.a.retry", "steps.b.kind"], "\(problems)")
        let error = #expect(throws: LoomError.self) { try PipelineSpec.parse(yaml: yaml) }
        #expect(error?.message.contains("3 problems") == true, "\(error?.message ?? "")")
        let twice = PipelineSpec.check(yaml: yaml.replacingOccurrences(of: "format: csv", with: "path: y.csv")).1
        #expect(twice.count == 1 && twice[0].message.contains("duplicated key(s): 'path'"), "\(twice)")
        #expect(PipelineSpec.check(yaml: "steps: [").1.first?.message.contains("not valid YAML") == true)
        #expect(PipelineSpec.check(yaml: "").1.first?.message.contains("empty") == true)
        #expect(PipelineSpec.check(yaml: "pipeline: x\nsteps: {}\n").1.first?.message == "no steps")
    }

    @Test("run parameters: defaults, conversions from text, unknown and missing ones refused")
    func parameters() throws {
        let spec = try PipelineSpec.parse(yaml: Self.example)
        let resolved = try spec.resolveParameters(["min_auc": .string("0.85"), "seed": .string("11")])
        #expect(resolved["min_auc"] == .number(0.85) && resolved["seed"] == .integer(11))
        #expect(resolved["customers"] == .string("customers@latest"))
        let unknown = #expect(throws: LoomError.self) { try spec.resolveParameters(["min_acu": .number(1)]) }
        #expect(unknown?.message.contains("unknown parameter 'min_acu'") == true)
        let wrong = #expect(throws: LoomError.self) { try spec.resolveParameters(["seed": .string("seven")]) }
        #expect(wrong?.message == "parameter 'seed' is an integer; 'seven' is not")
        let required = try PipelineSpec.parse(yaml: "pipeline: p\nparameters:\n  data: {type: dataset}\nsteps:\n  a: {kind: command, command: x}\n")
        let missing = #expect(throws: LoomError.self) { try required.resolveParameters([:]) }
        #expect(missing?.message.contains("data") == true)
        // A schedule of a pipeline with a required parameter must give it.
        let scheduled = "pipeline: p\nparameters:\n  data: {type: dataset}\nsteps:\n  a: {kind: command, command: x}\nschedules:\n  - cron: '@daily'\n"
        #expect(PipelineSpec.check(yaml: scheduled).1.first?.field == "schedules[0].parameters.data")
    }

    @Test("YAML scalars are typed as YAML 1.2 says: quoted ones are text")
    func scalars() throws {
        let spec = try PipelineSpec.parse(yaml: """
            pipeline: p
            parameters:
              a: 7
              b: "7"
              c: 0.5
              d: true
              e: 'true'
              f: 1e3
              g: 0x1F
              h: 7 days
            steps:
              s: {kind: command, command: x, timeout: 90, retries: 3, cache: false}
            """)
        #expect(spec.parameters.map(\.defaultValue) == [.integer(7), .string("7"), .number(0.5), .boolean(true), .string("true"), .number(1000), .integer(31), .string("7 days")])
        let s = try #require(spec.step("s"))
        #expect(s.timeout == 90 && s.retries == 3 && !s.cache)
        #expect(PipelineSpec.check(yaml: "pipeline: p\nsteps:\n  s: {kind: command, command: x, retries: '3'}\n").1.first?.field == "steps.s.retries")
        #expect(PipelineSpec.check(yaml: "pipeline: p\nsteps:\n  s: {kind: command, command: ~}\n").1.first?.field == "steps.s.command")
    }

    @Test("planning ten thousand steps in layers gives each its level and its neighbours")
    func largePlan() throws {
        var yaml = "pipeline: big\nsteps:\n"
        let width = 100
        for i in 0..<10_000 {
            yaml += "  s\(i):\n    kind: command\n    command: 'true'\n    outputs: {out: file}\n"
            if i >= width {
                yaml += "    inputs: {x: \"${{ steps.s\(i - width).outputs.out }}\"}\n"
                if i % width > 0 { yaml += "    needs: [s\(i - width - 1)]\n" }
            }
        }
        let spec = try PipelineSpec.parse(yaml: yaml)
        let plan = try PipelinePlan(spec)
        #expect(plan.levelCount == 100)
        #expect(plan.levels[9_999] == 99 && plan.levels[150] == 1)
        #expect(plan.dependencies[150] == [49, 50])
        #expect(plan.dependents[49] == [149, 150])
        // Every step comes after what it depends on.
        var position = [Int](repeating: 0, count: plan.order.count)
        for (k, i) in plan.order.enumerated() { position[i] = k }
        for (i, deps) in plan.dependencies.enumerated() { #expect(deps.allSatisfy { position[$0] < position[i] }) }
    }
}

@Suite("Cron schedules")
struct CronScheduleTests {
    static func date(_ text: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: text)!
    }

    @Test("the next run after a time, in UTC", arguments: [
        ("0 3 * * *", "2026-11-26T07:41:00Z", "2026-11-27T03:00:00Z"),
        ("*/15 * * * *", "2026-11-26T07:41:10Z", "2026-11-26T07:45:00Z"),
        ("0 3 * * 1-5", "2026-11-27T04:00:00Z", "2026-11-30T03:00:00Z"),  // Friday after 3: Monday
        ("30 8 1 * *", "2026-11-26T00:00:00Z", "2026-12-01T08:30:00Z"),
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 12 * JAN,jul SUN", "2026-11-26T00:00:00Z", "2027-01-03T12:00:00Z"),
        ("0 0 * * 7", "2026-11-26T00:00:00Z", "2026-11-29T00:00:00Z"),  // 7 is Sunday
        ("0 0 13 * FRI", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"),  // either day field
        ("@hourly", "2026-11-26T07:00:00Z", "2026-11-26T08:00:00Z"),
        ("@monthly", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z"),
        ("5-10/5 1 * * *", "2026-11-26T01:05:00Z", "2026-11-26T01:10:00Z"),
    ])
    func next(expression: String, after: String, expected: String) throws {
        let cron = try CronSchedule(parsing: expression)
        #expect(cron.next(after: Self.date(after)) == Self.date(expected))
    }

    @Test("invalid schedules are refused with the field named", arguments: [
        ("0 3 * *", "five fields"), ("60 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"), ("* * * * 8", "day of week"), ("*/0 * * * *", "minute"), ("5-1 * * * *", "backwards"),
        ("* * 31 4,6 *", "never runs"), ("a * * * *", "minute"), ("1,,2 * * * *", "minute"), ("@often", "five fields"),
    ])
    func invalid(expression: String, words: String) throws {
        let error = #expect(throws: LoomError.self) { try CronSchedule(parsing: expression) }
        #expect(error?.message.contains(words) == true, "\(error?.message ?? "")")
    }
}

@Suite("Step cache keys")
struct StepCacheKeyTests {
    @Test("the key changes with what the step computes, and only with that")
    func key() throws {
        let spec = try PipelineSpec.parse(yaml: PipelineSpecTests.example)
        let step = try #require(spec.step("sklearn"))
        let params = try spec.resolveParameters([:])
        func key(_ s: PipelineSpec.Step = step, _ p: [String: ParameterValue]? = nil, inputs: [String: String] = ["train": "sha256:aa"], code: [String: String] = ["train.py": "sha256:c1"]) -> String {
            StepCacheKey(step: s, parameters: p ?? params, inputs: inputs, code: code).digest
        }
        let base = key()
        #expect(base.hasPrefix("sha256:") && base.count == 71)
        #expect(key() == base)
        #expect(key(inputs: ["train": "sha256:ab"]) != base)
        #expect(key(code: ["train.py": "sha256:c2"]) != base)
        var seed = params
        seed["seed"] = .integer(8)
        #expect(key(step, seed) != base)  // the command line uses the seed
        var auc = params
        auc["min_auc"] = .number(0.9)
        #expect(key(step, auc) == base)  // it does not use min_auc
        var env = step
        env.environment["PYTHONHASHSEED"] = "1"
        #expect(key(env) != base)
        var renamed = step
        renamed.name = "other"
        renamed.retries = 5
        renamed.timeout = 1
        #expect(key(renamed) == base)

        let gate = try #require(spec.step("gate"))
        let g1 = StepCacheKey(step: gate, parameters: params, inputs: ["model": "m1"], code: [:])
        let g2 = StepCacheKey(step: gate, parameters: auc, inputs: ["model": "m1"], code: [:])
        #expect(g1.digest != g2.digest)  // its options use min_auc
        #expect(g2.options["metrics"] == .object(["validation_roc_auc": .object(["min": .number(0.9, raw: nil)])]))
    }
}
