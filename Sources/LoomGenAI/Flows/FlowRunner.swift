import AsyncHTTPClient
import Foundation
import LoomCore
import NIOCore
import NIOHTTP1

/// One run of a flow: its outputs, what each node did, and the trace that records it.
public struct FlowRun: Sendable, Encodable {
    public struct NodeRun: Sendable, Encodable {
        public var name: String
        public var kind: String
        /// `succeeded`, `skipped` or `failed`.
        public var status: String
        public var variant: String?
        public var durationMs: Double
        public var output: JSONValue?
        public var error: String?
        /// The gateway trace of an llm node's call.
        public var gatewayTraceId: String?
        /// A node the gateway's rate limit refused: when to try again (`retry-after`).
        public var retryAfterSeconds: Double?
    }

    public var flow: String
    public var traceId: String
    /// `succeeded` or `failed`.
    public var status: String
    public var outputs: [String: JSONValue]
    public var nodes: [NodeRun]
    public var error: String?
    public var durationMs: Double
    public var promptTokens: Int64
    public var completionTokens: Int64
    /// What its LLM calls cost at the gateway catalog's prices (0 for models without prices).
    public var cost: Double
}

/// Runs flows (docs/flows.md): nodes whose inputs are ready run concurrently, each after what
/// it needs; a node whose condition does not hold, or that needs a skipped node's outputs, is
/// skipped; a node that fails fails the run. LLM calls go through the gateway (its routes,
/// limits, usage and traces), retrieval through the index service. Every run is a trace
/// (task `flow`) with a span per node.
public final class FlowRunner: Sendable {
    let gateway: Gateway
    let indexes: IndexService?
    let client: HTTPClient

    public init(gateway: Gateway, indexes: IndexService?, client: HTTPClient) {
        self.gateway = gateway
        self.indexes = indexes
        self.client = client
    }

    struct Failure: Error {
        var node: String
        var message: String
        var retryAfter: Double? = nil
    }

    /// The inputs as the flow takes them: defaults filled, types checked, unknown names refused.
    public static func inputs(_ given: [String: JSONValue], for spec: FlowSpec) throws(LoomError) -> [String: JSONValue] {
        let known = Set(spec.inputs.map(\.name))
        if let unknown = given.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalidParameter("inputs.\(unknown): flow \(spec.name) has no such input (it takes: \(spec.inputs.map(\.name).joined(separator: ", ")))")
        }
        var out: [String: JSONValue] = [:]
        for input in spec.inputs {
            guard let v = given[input.name] ?? input.defaultValue else { throw .invalidParameter("inputs.\(input.name) is required (\(input.type.withArticle))") }
            guard FlowValues.conforms(v, to: input.type) else { throw .invalidParameter("inputs.\(input.name) must be \(input.type.withArticle)") }
            out[input.name] = v
        }
        return out
    }

    public func run(
        _ spec: FlowSpec, inputs given: [String: JSONValue], variants: [String: String] = [:], workspace: String, key: GatewayKey? = nil,
        traceParent: String? = nil
    ) async throws -> FlowRun {
        let inputs = try Self.inputs(given, for: spec)
        for (node, variant) in variants {
            guard let n = spec.nodes.first(where: { $0.name == node }) else { throw LoomError.invalidParameter("variants: flow \(spec.name) has no node \(node)") }
            guard n.variants[variant] != nil else {
                throw LoomError.invalidParameter("variants: node \(node) has no variant \(variant) (it has: \(n.variants.keys.sorted().joined(separator: ", ")))")
            }
        }
        // The flow's trace continues the caller's; each gateway call of its nodes is a trace of
        // its own (linked from the node's span), so that the two never share an id.
        let trace = TraceBuilder(caller: GatewayCaller(workspace: workspace, key: key, traceParent: traceParent), task: "flow")
        let caller = GatewayCaller(workspace: workspace, key: key)
        var spec = spec
        spec.nodes = spec.nodes.map { $0.with(variant: variants[$0.name]) }
        trace.update {
            $0.route = spec.name
            $0.input = JSONValue.object(inputs).jsonString
        }
        var outputs: [String: JSONValue] = [:]  // node name -> its outputs object
        var runs: [String: FlowRun.NodeRun] = [:]
        var pending = spec.order
        var failure: Failure?
        while !pending.isEmpty, failure == nil {
            let ready = pending.filter { n in Set(n.references.map(\.source)).subtracting(["inputs", "item"]).allSatisfy { runs[$0] != nil } }
            pending.removeAll { n in ready.contains { $0.name == n.name } }
            let snapshot = outputs
            let skippedNodes = Set(runs.values.filter { $0.status == "skipped" }.map(\.name))
            await withTaskGroup(of: FlowRun.NodeRun.self) { group in
                for node in ready {
                    let variant = variants[node.name]
                    group.addTask {
                        let started = ContinuousClock.now
                        var run = FlowRun.NodeRun(name: node.name, kind: node.kind.rawValue, status: "succeeded", variant: variant, durationMs: 0)
                        defer {}
                        if node.references.contains(where: { skippedNodes.contains($0.source) }) {
                            run.status = "skipped"
                        } else {
                            do {
                                var scope = Scope(inputs: inputs, outputs: snapshot, item: nil)
                                if let c = node.condition, !(try scope.holds(c)) {
                                    run.status = "skipped"
                                } else {
                                    let (out, gatewayTrace) = try await self.execute(node, scope: &scope, caller: caller)
                                    run.output = out
                                    run.gatewayTraceId = gatewayTrace
                                }
                            } catch let f as Failure {
                                run.status = "failed"
                                run.error = f.message
                                run.retryAfterSeconds = f.retryAfter
                            } catch {
                                run.status = "failed"
                                run.error = (error as? LoomError)?.message ?? "\(error)"
                            }
                        }
                        let d = ContinuousClock.now - started
                        run.durationMs = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
                        var attributes: [String: JSONValue] = ["kind": .string(node.kind.rawValue), "status": .string(run.status)]
                        if let variant { attributes["variant"] = .string(variant) }
                        if let e = run.error { attributes["error"] = .string(e) }
                        if let g = run.gatewayTraceId { attributes["gateway_trace_id"] = .string(g) }
                        trace.span("node:" + node.name, since: started, attributes)
                        return run
                    }
                }
                for await run in group {
                    runs[run.name] = run
                    if let out = run.output { outputs[run.name] = out }
                    if run.status == "failed", failure == nil { failure = Failure(node: run.name, message: run.error ?? "failed") }
                }
            }
        }
        var result: [String: JSONValue] = [:]
        if failure == nil {
            let scope = Scope(inputs: inputs, outputs: outputs, item: nil)
            for (name, value) in spec.outputs { result[name] = (try? scope.resolve(value)) ?? .null }
        }
        var prompt: Int64 = 0, completion: Int64 = 0
        var cost = 0.0
        for r in runs.values {
            for out in [r.output ?? .null] + (r.output?["results"]?.arrayValue ?? []) {
                prompt += Int64(out["usage"]?["prompt_tokens"]?.doubleValue ?? 0)
                completion += Int64(out["usage"]?["completion_tokens"]?.doubleValue ?? 0)
                cost += out["cost"]?.doubleValue ?? 0
            }
        }
        let message = failure.map { "node \($0.node): \($0.message)" }
        trace.update {
            $0.output = JSONValue.object(result).jsonString
            $0.usage = TokenUsage(prompt: prompt, completion: completion)
        }
        gateway.traces.add(trace.finish(status: failure == nil ? 200 : 500, error: message))
        let ordered = spec.nodes.compactMap { runs[$0.name] }
        let total = Double(trace.micros(.now)) / 1000
        return FlowRun(
            flow: spec.name, traceId: trace.id, status: failure == nil ? "succeeded" : "failed", outputs: result, nodes: ordered, error: message,
            durationMs: total, promptTokens: prompt, completionTokens: completion, cost: cost)
    }

    /// What references resolve against.
    struct Scope {
        var inputs: [String: JSONValue]
        var outputs: [String: JSONValue]
        var item: JSONValue?

        func lookup(_ r: FlowSpec.Reference) throws -> JSONValue {
            var v: JSONValue
            switch r.source {
            case "inputs": v = inputs[r.output ?? ""] ?? .null
            case "item":
                guard let item else { throw LoomError.invalidState("\(r) outside a map") }
                v = item
            default:
                guard let out = outputs[r.source] else { throw LoomError.invalidState("\(r): node \(r.source) has not run") }
                v = out[r.output ?? ""] ?? .null
            }
            for key in r.path {
                if let i = Int(key), let a = v.arrayValue { v = a.indices.contains(i) ? a[i] : .null } else { v = v[key] ?? .null }
            }
            return v
        }

        func resolve(_ value: FlowSpec.Value) throws -> JSONValue {
            switch value {
            case .literal(let j): return j
            case .reference(let r): return try lookup(r)
            case .template(let parts):
                return .string(try parts.map { p -> String in
                    switch p {
                    case .text(let t): t
                    case .reference(let r): FlowValues.text(try lookup(r))
                    }
                }.joined())
            case .object(let o): return .object(try o.mapValues(resolve))
            case .list(let l): return .array(try l.map(resolve))
            }
        }

        func holds(_ c: FlowSpec.Condition) throws -> Bool {
            FlowValues.holds(c, left: try resolve(c.left), right: try c.right.map(resolve))
        }
    }

    /// Runs one node: its outputs, and the gateway trace of an llm call.
    func execute(_ node: FlowSpec.Node, scope: inout Scope, caller: GatewayCaller) async throws -> (JSONValue, String?) {
        let s = scope
        func param(_ key: String) throws -> JSONValue? { try node.parameters[key].map { try s.resolve($0) } }
        func string(_ key: String) throws -> String? { try param(key).map(FlowValues.text) }
        switch node.kind {
        case .prompt:
            let variables = try param("variables")?.objectValue ?? [:]
            let content: PromptContent
            var label = "inline"
            if let reference = try string("prompt") {
                guard let source = gateway.prompts else { throw LoomError.unavailable("This server has no prompt registry") }
                let resolved = try await source.prompt(try PromptReference(parsing: reference), workspace: caller.workspace)
                content = resolved.content
                label = "\(resolved.name)@\(resolved.version)"
            } else {
                content = try PromptContent(template: try param("template"), modelConfig: nil)
            }
            let messages = try content.render(variables.mapValues { .string(FlowValues.text($0)) })
            return (.object([
                "messages": .array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) }),
                "text": .string(messages.map(\.content).joined(separator: "\n\n")), "prompt": .string(label),
            ]), nil)
        case .llm:
            let route = try string("route") ?? ""
            var messages: [JSONValue]
            if let given = try param("messages") {
                guard let list = given.arrayValue else { throw Failure(node: node.name, message: "messages must be a list of {role, content}") }
                messages = list
            } else {
                messages = []
                if let system = try string("system") { messages.append(.object(["role": .string("system"), "content": .string(system)])) }
                messages.append(.object(["role": .string("user"), "content": .string(try string("prompt") ?? "")]))
            }
            var body: [String: JSONValue] = try param("settings")?.objectValue ?? [:]
            body["model"] = .string(route)
            body["messages"] = .array(messages)
            body["stream"] = nil
            let wantsJSON = try param("json") == .bool(true)
            if wantsJSON { body["response_format"] = .object(["type": .string("json_object")]) }
            let answer: GatewayAnswer
            do {
                answer = try await gateway.chat(JSONValue.object(body).jsonBytes, caller: caller)
            } catch {
                // A rate limit (not a spent budget) passes; say when, so that a batch can wait.
                let after = error.status == 429 && error.code == "rate_limit_exceeded"
                    ? error.headers.first { $0.0 == "retry-after" }.flatMap { Double($0.1) } ?? 1 : nil
                throw Failure(node: node.name, message: "route \(route): \(error.message)", retryAfter: after)
            }
            guard case .complete(let bytes, let headers) = answer, let value = try? JSONValue.parse(bytes) else {
                throw Failure(node: node.name, message: "route \(route) did not answer a whole chat completion")
            }
            let text = Gateway.answerText(value)
            var out: [String: JSONValue] = [
                "text": .string(text), "usage": value["usage"] ?? .object([:]), "model": value["model"] ?? .string(route),
            ]
            if wantsJSON { out["json"] = (try? JSONValue.parse(Array(text.utf8))) ?? .null }
            if let cost = headers.first(where: { $0.0 == Gateway.costHeader }).flatMap({ Double($0.1) }) { out["cost"] = .number(cost, raw: nil) }
            return (.object(out), headers.first { $0.0 == "x-loom-trace-id" }?.1)
        case .retrieve:
            guard let indexes else { throw LoomError.unavailable("No index service here") }
            let modeText = try string("mode") ?? "hybrid"
            guard let mode = RetrievalMode(rawValue: modeText) else { throw Failure(node: node.name, message: "mode must be bm25, vector or hybrid") }
            let k = Int(try param("k")?.doubleValue ?? 5)
            var filter: MetadataFilter?
            if let f = try param("filter"), f != .null {
                filter = try JSONDecoder().decode(MetadataFilter.self, from: Data(f.jsonBytes))
            }
            let (_, hits) = try await indexes.query(
                workspace: caller.workspace, name: try string("index") ?? "", text: try string("query") ?? "", mode: mode, k: k, filter: filter)
            var sources: [String] = []
            for h in hits where !sources.contains(h.source) { sources.append(h.source) }
            return (.object([
                "hits": .array(hits.map { h in
                    .object(["source": .string(h.source), "title": .string(h.title), "heading": h.heading.map { .string($0) } ?? .null,
                             "text": .string(h.text), "score": .number(h.score, raw: nil)])
                }),
                "text": .string(hits.map { "[\($0.source)]\n\($0.text)" }.joined(separator: "\n\n")),
                "sources": .array(sources.map { .string($0) }), "count": .int(Int64(hits.count)),
            ]), nil)
        case .tool:
            if let command = try param("command") {
                return (try await runCommand(
                    node.name, command: command, input: try param("input"), directory: try string("directory"),
                    environment: try param("environment")?.objectValue?.mapValues(FlowValues.text) ?? [:], timeout: try param("timeout")?.doubleValue ?? 30), nil)
            }
            let url = try string("url") ?? ""
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw Failure(node: node.name, message: "url must be http:// or https://, not '\(url)'") }
            var request = HTTPClientRequest(url: url)
            request.method = HTTPMethod(rawValue: (try string("method") ?? "POST").uppercased())
            for (k, v) in try param("headers")?.objectValue ?? [:] { request.headers.add(name: k, value: FlowValues.text(v)) }
            if let body = try param("body") {
                request.headers.replaceOrAdd(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body.jsonBytes))
            }
            let timeout = try param("timeout")?.doubleValue ?? 30
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .milliseconds(Int64(max(0.001, timeout) * 1000)))
            } catch {
                throw Failure(node: node.name, message: "\(url) could not be reached: \(error)")
            }
            let buffer: ByteBuffer
            do {
                buffer = try await response.body.collect(upTo: 16 << 20)
            } catch {
                throw Failure(node: node.name, message: "\(url) answered with more than 16 MiB, or the answer broke off: \(error)")
            }
            let bytes = Array(buffer.readableBytesView)
            let text = String(decoding: bytes, as: UTF8.self)
            guard response.status.code < 400 else {
                throw Failure(node: node.name, message: "\(url) answered \(response.status.code): \(text.prefix(300))")
            }
            return (.object([
                "status": .int(Int64(response.status.code)), "body": (try? JSONValue.parse(bytes)) ?? .string(text), "text": .string(text),
            ]), nil)
        case .branch:
            guard let c = node.branch else { return (.object(["result": .bool(false)]), nil) }
            return (.object(["result": .bool(try s.holds(c))]), nil)
        case .map:
            guard let body = node.body?.node else { return (.object(["results": .array([])]), nil) }
            let items = try param("over")?.arrayValue ?? []
            let limit = max(1, min(64, Int(try param("concurrency")?.doubleValue ?? 4)))
            var results = [JSONValue](repeating: .null, count: items.count)
            try await withThrowingTaskGroup(of: (Int, JSONValue).self) { group in
                var next = 0
                func start() {
                    guard next < items.count else { return }
                    let i = next
                    next += 1
                    var inner = s
                    inner.item = items[i]
                    group.addTask {
                        var scope = inner
                        if let c = body.condition, !(try scope.holds(c)) { return (i, .null) }
                        return (i, try await self.execute(body, scope: &scope, caller: caller).0)
                    }
                }
                for _ in 0..<limit { start() }
                while let (i, out) = try await group.next() {
                    results[i] = out
                    start()
                }
            }
            return (.object(["results": .array(results)]), nil)
        }
    }
}
