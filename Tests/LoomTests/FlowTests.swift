import AsyncHTTPClient
import Foundation
import LoomCore
import LoomTesting
import Testing

@testable import LoomGenAI

@Suite("Flows")
struct FlowTests {
    static let valid = """
        kind: flow
        name: qa
        inputs:
          question: string
          k: {type: integer, default: 2}
        nodes:
          - name: search
            kind: retrieve
            index: docs
            query: ${inputs.question}
            k: ${inputs.k}
            mode: bm25
          - name: found
            kind: branch
            condition: ${search.count} > 0
          - name: ask
            kind: prompt
            if: ${found.result}
            template: "Answer {{question}} from: {{context}}"
            variables: {question: "${inputs.question}", context: "${search.text}"}
            variants:
              short: {template: "Briefly: {{question}}"}
          - name: each
            kind: map
            over: ${search.sources}
            node: {kind: prompt, template: "Source {{s}}", variables: {s: "${item}"}}
          - name: nothing
            kind: prompt
            if: not ${found.result}
            template: "No context for {{q}}"
            variables: {q: "${inputs.question}"}
        outputs:
          prompt: ${ask.text}
          per_source: ${each.results}
          fallback: ${nothing.text}
        """

    func problems(_ yaml: String) -> String {
        do {
            _ = try FlowSpec.parse(yaml: yaml)
            return ""
        } catch {
            return error.message
        }
    }

    @Test func aValidFlowParsesInDependencyOrder() throws {
        let spec = try FlowSpec.parse(yaml: Self.valid)
        let order = spec.runOrder.map(\.name)
        #expect(order.firstIndex(of: "search")! < order.firstIndex(of: "found")!)
        #expect(order.firstIndex(of: "found")! < order.firstIndex(of: "ask")!)
        #expect(spec.nodes.first { $0.name == "ask" }?.needs == ["found", "search"])
        #expect(spec.inputs.map(\.name) == ["question", "k"] && spec.inputs[1].defaultValue?.doubleValue == 2)
    }

    @Test func badSpecsAreRefusedWithTheFieldNamed() {
        let head = "kind: flow\nname: f\ninputs: {q: string}\noutputs: {a: \"${a.text}\"}\nnodes:\n"
        let cases: [(String, String)] = [
            ("  - {name: a, kind: sql}\n", "nodes[0].kind"),
            ("  - {name: a, kind: llm, route: chat}\n", "nodes[0].messages"),
            ("  - {name: a, kind: llm, route: chat, prompt: \"${inputs.nope}\"}\n", "no such input"),
            ("  - {name: a, kind: llm, route: chat, prompt: \"${b.text}\"}\n", "no node named b"),
            ("  - {name: a, kind: llm, route: chat, prompt: x}\n  - {name: b, kind: retrieve, index: i, query: \"${a.nope}\"}\n", "outputs are"),
            ("  - {name: a, kind: llm, route: chat, messages: \"${b.count}\"}\n  - {name: b, kind: retrieve, index: i, query: x}\n", "is an integer; nodes[0].messages takes messages"),
            ("  - {name: a, kind: llm, route: chat, prompt: \"${b.text}\"}\n  - {name: b, kind: llm, route: chat, prompt: \"${a.text}\"}\n", "a cycle"),
            ("  - {name: a, kind: llm, route: chat, prompt: x}\n  - {name: a, kind: llm, route: chat, prompt: y}\n", "names two nodes"),
            ("  - {name: a, kind: llm, route: chat, prompt: \"${item}\"}\n", "only known inside a map"),
            ("  - {name: a, kind: llm, route: chat, prompt: x, temprature: 0}\n", "temprature"),
            ("  - {name: a, kind: branch}\n", "nodes[0].condition"),
            ("  - {name: a, kind: map, over: []}\n", "nodes[0].node"),
            ("  - {name: a, kind: retrieve, index: i, query: x, mode: fuzzy}\n", "nodes[0].mode"),
            ("  - {name: a, kind: llm, route: chat, prompt: x, if: \"${inputs.q} >\"}\n", "nodes[0].if"),
            ("  - {name: a, kind: llm, route: chat, prompt: x, k: 1}\n", "k"),
        ]
        for (nodes, expected) in cases {
            let message = problems(head + nodes)
            #expect(message.contains(expected), "\(nodes) → \(message)")
        }
        #expect(problems("kind: flow\nname: f\nnodes: [{name: a, kind: prompt, template: x}]\n").contains("outputs"))
    }

    @Test func runsBranchesMapsAndVariantsOverARealIndex() async throws {
        try await withTestStore(.sqlite) { t, tracking in
            let root = t.directory.appendingPathComponent("sources/docs")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            try "# Rollbacks\nA canary rolls back when its gate fails.".write(to: root.appendingPathComponent("a.md"), atomically: true, encoding: .utf8)
            try "# Drift\nMonitors compare traffic with a reference.".write(to: root.appendingPathComponent("b.md"), atomically: true, encoding: .utf8)
            let indexes = IndexService(
                store: tracking.store, artifacts: tracking.artifacts, embedder: nil, sourcesRoot: t.directory.appendingPathComponent("sources").path,
                logger: TestStore.logger)
            _ = try await indexes.apply(yaml: "kind: index\nname: docs\nsources: [docs]\n", workspace: Workspace.defaultName, actor: "a")
            _ = try await indexes.build(workspace: Workspace.defaultName, name: "docs", actor: "a")
            let gateway = Gateway(store: tracking.store, client: HTTPClient.shared, logger: TestStore.logger)
            let runner = FlowRunner(gateway: gateway, indexes: indexes, client: HTTPClient.shared)
            let spec = try FlowSpec.parse(yaml: Self.valid)

            let run = try await runner.run(spec, inputs: ["question": .string("canary gate")], workspace: Workspace.defaultName)
            #expect(run.status == "succeeded", "\(run.error ?? "")")
            #expect(run.outputs["prompt"]?.stringValue?.hasPrefix("Answer canary gate from: [docs/a.md]") == true)
            #expect(run.outputs["per_source"]?.arrayValue?.count == 1)
            #expect(run.outputs["fallback"] == .null)
            #expect(run.nodes.first { $0.name == "nothing" }?.status == "skipped")
            #expect(run.nodes.first { $0.name == "ask" }?.status == "succeeded")

            let none = try await runner.run(spec, inputs: ["question": .string("zebra"), "k": .int(1)], workspace: Workspace.defaultName)
            #expect(none.outputs["fallback"]?.stringValue == "No context for zebra" && none.outputs["prompt"] == .null)
            #expect(none.nodes.first { $0.name == "ask" }?.status == "skipped")

            let short = try await runner.run(spec, inputs: ["question": .string("canary")], variants: ["ask": "short"], workspace: Workspace.defaultName)
            #expect(short.outputs["prompt"]?.stringValue == "Briefly: canary" && short.nodes.first { $0.name == "ask" }?.variant == "short")

            // The run is a trace with a span per node that ran or was skipped.
            let traces = gateway.traces.take()
            #expect(traces.count == 3 && traces.allSatisfy { $0.task == "flow" && $0.route == "qa" })
            let spans = (try? JSONValue.parse(Array(traces[0].spansJSON.utf8)))?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(Set(spans) == ["node:search", "node:found", "node:ask", "node:each", "node:nothing"])

            await #expect(throws: LoomError.self) { try await runner.run(spec, inputs: [:], workspace: Workspace.defaultName) }
            await #expect(throws: LoomError.self) { try await runner.run(spec, inputs: ["question": .int(3)], workspace: Workspace.defaultName) }
            await #expect(throws: LoomError.self) { try await runner.run(spec, inputs: ["question": .string("x"), "other": .string("y")], workspace: Workspace.defaultName) }
            await #expect(throws: LoomError.self) {
                try await runner.run(spec, inputs: ["question": .string("x")], variants: ["ask": "long"], workspace: Workspace.defaultName)
            }
            // A node that fails fails the run, with the node named.
            let broken = try FlowSpec.parse(yaml: """
                kind: flow
                name: broken
                inputs: {q: string}
                nodes:
                  - {name: look, kind: retrieve, index: missing, query: "${inputs.q}"}
                outputs: {hits: "${look.hits}"}
                """)
            let failed = try await runner.run(broken, inputs: ["q": .string("x")], workspace: Workspace.defaultName)
            #expect(failed.status == "failed" && failed.error?.contains("node look") == true && failed.error?.contains("missing") == true)
        }
    }

    /// `tool` nodes that run a command: input on standard input, output parsed when it is JSON,
    /// a failing status or a timeout fails the node with the reason.
    @Test func commandToolsRunProgramsWithTheirInput() async throws {
        try await withTestStore(.sqlite) { _, tracking in
            let gateway = Gateway(store: tracking.store, client: HTTPClient.shared, logger: TestStore.logger)
            let runner = FlowRunner(gateway: gateway, indexes: nil, client: HTTPClient.shared)
            let spec = try FlowSpec.parse(yaml: """
                kind: flow
                name: tools
                inputs: {q: string}
                nodes:
                  - {name: upper, kind: tool, command: [/bin/sh, -c, "tr a-z A-Z"], input: "${inputs.q}"}
                  - {name: json, kind: tool, command: [/bin/sh, -c, "cat > /dev/null; printf '{\\"n\\": %s}' \\"$LEN\\""], input: {q: "${inputs.q}"}, environment: {LEN: "42"}}
                outputs: {upper: "${upper.text}", n: "${json.body.n}", status: "${json.status}"}
                """)
            let run = try await runner.run(spec, inputs: ["q": .string("hello")], workspace: Workspace.defaultName)
            #expect(run.status == "succeeded", "\(run.error ?? "")")
            #expect(run.outputs["upper"] == .string("HELLO") && run.outputs["n"]?.doubleValue == 42 && run.outputs["status"]?.doubleValue == 0)

            func failure(_ command: String, timeout: Double = 10) async throws -> String {
                let f = try FlowSpec.parse(yaml: """
                    kind: flow
                    name: bad
                    nodes: [{name: t, kind: tool, command: \(command), timeout: \(timeout)}]
                    outputs: {x: "${t.text}"}
                    """)
                let r = try await runner.run(f, inputs: [:], workspace: Workspace.defaultName)
                #expect(r.status == "failed")
                return r.error ?? ""
            }
            #expect(try await failure(#"[/bin/sh, -c, "echo oops >&2; exit 3"]"#).contains("exited with status 3: oops"))
            #expect(try await failure("[/bin/sleep, '5']", timeout: 0.3).contains("did not finish within 0.3 s"))
            #expect(try await failure("[/no/such/program]").contains("could not run"))
        }
    }

    @Test func toolNodesTakeAUrlOrACommand() {
        let both = problems("kind: flow\nname: f\nnodes: [{name: t, kind: tool, url: 'http://x', command: [ls]}]\noutputs: {x: '${t.text}'}\n")
        #expect(both.contains("nodes[0].url"))
        let neither = problems("kind: flow\nname: f\nnodes: [{name: t, kind: tool}]\noutputs: {x: '${t.text}'}\n")
        #expect(neither.contains("nodes[0].url"))
        let mixed = problems("kind: flow\nname: f\nnodes: [{name: t, kind: tool, command: [ls], body: {a: 1}}]\noutputs: {x: '${t.text}'}\n")
        #expect(mixed.contains("nodes[0].command"))
    }
}
