import Foundation
import LoomCore

/// What an evaluation found: per variant, each row's answer and scores, the aggregates and
/// the gates; and the first two variants side by side.
public struct EvaluationReport: Sendable, Encodable {
    public struct RowResult: Sendable, Codable, Equatable {
        public var row: Int
        public var question: String
        public var answer: String?
        public var traceId: String?
        public var latencyMs: Double
        public var error: String?
        public var scores: [EvaluatorResult]

        public init(row: Int, question: String, answer: String? = nil, traceId: String? = nil, latencyMs: Double, error: String? = nil, scores: [EvaluatorResult]) {
            self.row = row
            self.question = question
            self.answer = answer
            self.traceId = traceId
            self.latencyMs = latencyMs
            self.error = error
            self.scores = scores
        }
    }

    public struct VariantResult: Sendable, Encodable {
        public var name: String
        public var nodes: [String: String]
        public var rows: [RowResult]
        public var aggregates: [String: Aggregate]
        public var gates: [GateOutcome]
        public var passed: Bool
        public var failedRows: Int
    }

    /// The stored run's id and status (docs/evaluation.md, "Runs").
    public var id: String?
    public var status: String?
    public var name: String
    public var rows: Int
    public var variants: [VariantResult]
    public var comparison: VariantComparison?
    public var passed: Bool
    public var durationMs: Double
}

/// Runs evaluations (docs/evaluation.md): each variant of the flow over every row, at most
/// `concurrency` rows at once; each answer scored by the evaluators (LLM judges through the
/// gateway); a row whose flow fails, or whose judge's reply does not parse, is an error for
/// that row, not for the run.
public final class EvaluationRunner: Sendable {
    let flows: FlowRunner
    let gateway: Gateway

    /// Runs of a row the gateway's rate limit refused, at most.
    static let rateLimitAttempts = 5
    /// The longest `retry-after` waited for.
    static let longestWait = 60.0

    public init(flows: FlowRunner, gateway: Gateway) {
        self.flows = flows
        self.gateway = gateway
    }

    /// Checks that the spec fits the flow: its inputs, outputs and variants name what the flow has.
    public func check(_ spec: EvaluationSpec, flow: FlowSpec) throws(LoomError) {
        let inputNames = Set(flow.inputs.map(\.name))
        for (input, _) in spec.inputs where !inputNames.contains(input) {
            throw LoomError.invalidParameter("inputs.\(input): flow \(flow.name) has no such input")
        }
        let outputs = Set(flow.outputs.map(\.name))
        for (key, name) in [("answer", spec.answer), ("context", spec.context), ("retrieved", spec.retrieved)] {
            if let name, !outputs.contains(name) { throw LoomError.invalidParameter("\(key): flow \(flow.name) has no output \(name) (it has: \(outputs.sorted().joined(separator: ", ")))") }
        }
        for variant in spec.variants {
            for (node, v) in variant.nodes {
                guard flow.nodes.first(where: { $0.name == node })?.variants[v] != nil else {
                    throw LoomError.invalidParameter("variants.\(variant.name).\(node): flow \(flow.name) has no node \(node) with a variant \(v)")
                }
            }
        }
    }

    /// Rows whose results are written at once, at most; and the longest a finished row waits to be written.
    static let recordBatch = 32
    static let recordInterval = Duration.milliseconds(500)

    /// Runs every variant over the rows. `done` holds results already recorded, by variant
    /// (those rows are not run again); `record` receives the new results as they finish, in
    /// batches: a run that stops half way loses at most the batch being collected.
    public func run(
        _ spec: EvaluationSpec, flow: FlowSpec, rows: [[String: JSONValue]], workspace: String, failUnder: Gate? = nil,
        done: [String: [EvaluationReport.RowResult]] = [:],
        record: (@Sendable (_ variant: String, _ rows: [EvaluationReport.RowResult]) async throws -> Void)? = nil
    ) async throws -> EvaluationReport {
        guard !rows.isEmpty else { throw LoomError.invalidParameter("rows: the dataset has no rows") }
        guard rows.count <= Self.maxRows else { throw LoomError.invalidParameter("rows: at most 100,000 rows per run") }
        try check(spec, flow: flow)
        let started = ContinuousClock.now
        var results: [String: [EvaluationReport.RowResult]] = [:]
        for variant in spec.variants {
            var out = [EvaluationReport.RowResult?](repeating: nil, count: rows.count)
            for r in done[variant.name] ?? [] where r.row >= 1 && r.row <= rows.count { out[r.row - 1] = r }
            let todo = out.indices.filter { out[$0] == nil }
            try await withThrowingTaskGroup(of: (Int, EvaluationReport.RowResult).self) { group in
                var next = 0
                func start() {
                    guard next < todo.count else { return }
                    let i = todo[next]
                    next += 1
                    group.addTask { (i, await self.evaluate(row: i, rows[i], spec: spec, flow: flow, variant: variant.nodes, workspace: workspace)) }
                }
                for _ in 0..<spec.concurrency { start() }
                var pending: [EvaluationReport.RowResult] = []
                var lastWrite = ContinuousClock.now
                while let (i, r) = try await group.next() {
                    out[i] = r
                    start()
                    guard let record else { continue }
                    pending.append(r)
                    if pending.count >= Self.recordBatch || ContinuousClock.now - lastWrite >= Self.recordInterval {
                        try await record(variant.name, pending)
                        pending.removeAll(keepingCapacity: true)
                        lastWrite = ContinuousClock.now
                    }
                }
                if let record, !pending.isEmpty { try await record(variant.name, pending) }
            }
            results[variant.name] = out.compactMap { $0 }
        }
        let d = ContinuousClock.now - started
        return Self.report(
            spec, rows: rows.count, results: results, gate: failUnder ?? spec.failUnder,
            durationMs: Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    static let maxRows = 100_000

    /// The report of an evaluation's results so far: each variant's aggregates and gates (a
    /// gate also needs every row to have run), the first two variants compared.
    public static func report(
        _ spec: EvaluationSpec, rows: Int, results: [String: [EvaluationReport.RowResult]], gate: Gate?, durationMs: Double
    ) -> EvaluationReport {
        var variants: [EvaluationReport.VariantResult] = []
        for variant in spec.variants {
            let done = (results[variant.name] ?? []).sorted { $0.row < $1.row }
            let aggregates = Aggregates.byName(done.flatMap(\.scores))
            var gates = gate?.check(aggregates: aggregates) ?? []
            let failed = done.filter { $0.error != nil }.count
            // Scores leave failed rows out: a gate also needs every row to have run.
            if gate != nil, failed > 0 {
                gates.append(GateOutcome(
                    metric: "failed_rows", statistic: .max, op: .atMost, threshold: 0, actual: Double(failed), passed: false,
                    reason: "\(failed) of \(done.count) rows failed to run"))
            }
            if gate != nil, done.count < rows {
                gates.append(GateOutcome(
                    metric: "rows_run", statistic: .min, op: .atLeast, threshold: Double(rows), actual: Double(done.count), passed: false,
                    reason: "\(rows - done.count) of \(rows) rows have not run"))
            }
            variants.append(EvaluationReport.VariantResult(
                name: variant.name, nodes: variant.nodes, rows: done, aggregates: aggregates, gates: gates, passed: Gate.allPassed(gates),
                failedRows: failed))
        }
        var comparison: VariantComparison?
        if variants.count >= 2, let metric = spec.evaluators.first?.name {
            func byRow(_ v: EvaluationReport.VariantResult) -> [String: [EvaluatorResult]] {
                Dictionary(v.rows.map { (String(format: "%06d", $0.row), $0.scores) }, uniquingKeysWith: { a, _ in a })
            }
            let lowerIsBetter = spec.evaluators.first.map { $0.kind == .latency || $0.kind == .cost } ?? false
            comparison = VariantComparison(a: byRow(variants[0]), b: byRow(variants[1]), metric: metric, higherIsBetter: !lowerIsBetter)
        }
        return EvaluationReport(
            name: spec.name, rows: rows, variants: variants, comparison: comparison, passed: variants.allSatisfy(\.passed), durationMs: durationMs)
    }

    /// One row through the flow and the evaluators.
    func evaluate(
        row index: Int, _ row: [String: JSONValue], spec: EvaluationSpec, flow: FlowSpec, variant: [String: String], workspace: String
    ) async -> EvaluationReport.RowResult {
        let question = row["question"].map(FlowValues.text) ?? ""
        var inputs: [String: JSONValue] = [:]
        for input in flow.inputs {
            let field = spec.inputs[input.name] ?? input.name
            if let v = row[field] { inputs[input.name] = v }
        }
        var result = EvaluationReport.RowResult(row: index + 1, question: question, latencyMs: 0, scores: [])
        var run: FlowRun
        do {
            run = try await flows.run(flow, inputs: inputs, variants: variant, workspace: workspace)
            // A row the gateway's rate limit refused is run again when the limit allows, a few
            // times: the concurrency limit and the routes' limits then share the work out.
            var attempts = 1
            while run.status == "failed", attempts < Self.rateLimitAttempts,
                let wait = run.nodes.compactMap(\.retryAfterSeconds).max(), wait <= Self.longestWait {
                try await Task.sleep(for: .seconds(max(0.05, wait)))
                run = try await flows.run(flow, inputs: inputs, variants: variant, workspace: workspace)
                attempts += 1
            }
        } catch {
            result.error = "row \(index + 1): \((error as? LoomError)?.message ?? "\(error)")"
            result.scores = spec.evaluators.map { EvaluatorResult.failure($0.name, "the flow did not run: \(result.error ?? "")") }
            return result
        }
        result.traceId = run.traceId
        result.latencyMs = run.durationMs
        guard run.status == "succeeded" else {
            result.error = "row \(index + 1): \(run.error ?? "the flow failed")"
            result.scores = spec.evaluators.map { EvaluatorResult.failure($0.name, "the flow failed: \(run.error ?? "")") }
            return result
        }
        let answer = run.outputs[spec.answer].map(FlowValues.text) ?? ""
        result.answer = answer
        var evaluated = EvaluationRow(
            question: question, answer: answer,
            context: spec.context.flatMap { run.outputs[$0] }.map(FlowValues.text) ?? row["context"].map(FlowValues.text),
            expected: (row["expected"] ?? row["ground_truth"]).map(FlowValues.text),
            retrieved: spec.retrieved.flatMap { run.outputs[$0]?.arrayValue }?.map(FlowValues.text),
            relevant: row["relevant"]?.arrayValue?.map(FlowValues.text), latencyMs: run.durationMs, cost: run.cost)
        if let route = spec.embeddingsRoute, spec.evaluators.contains(where: { $0.kind == .embeddingSimilarity }), let expected = evaluated.expected {
            if let vectors = try? await gateway.embed([answer, expected], route: route, workspace: workspace), vectors.count == 2 {
                evaluated.answerEmbedding = vectors[0].map(Double.init)
                evaluated.expectedEmbedding = vectors[1].map(Double.init)
            }
        }
        result.scores = await score(evaluated, evaluators: spec.evaluators, workspace: workspace)
        return result
    }

    /// Scores one row with each evaluator in turn (judges through the gateway): what an
    /// evaluation does to each answer, and a monitor's generation signals to collected ones.
    public func score(_ row: EvaluationRow, evaluators: [EvaluatorSpec], workspace: String) async -> [EvaluatorResult] {
        var scores: [EvaluatorResult] = []
        for e in evaluators {
            if case .llmJudge(let options) = e.options {
                scores.append(await judge(e, options: options, row: row, workspace: workspace))
            } else {
                scores.append(Evaluator.evaluate(e, row: row))
            }
        }
        return scores
    }

    func judge(_ spec: EvaluatorSpec, options: JudgeOptions, row: EvaluationRow, workspace: String) async -> EvaluatorResult {
        var messages: [ChatMessage]
        if let reference = options.promptRef {
            // A registry prompt: its own messages, rendered with the row, after the rubric's system message.
            guard let source = gateway.prompts else { return .failure(spec.name, "this server has no prompt registry for prompt_ref \(reference)") }
            do {
                let resolved = try await source.prompt(try PromptReference(parsing: reference), workspace: workspace)
                let values: [String: JSONValue] = [
                    "question": .string(row.question), "answer": .string(row.answer), "context": .string(row.context ?? ""),
                    "expected": .string(row.expected ?? ""),
                ]
                messages = [ChatMessage(role: "system", content: JudgeRubricText.system(options.rubric, low: options.minScore, high: options.maxScore))]
                    + (try resolved.content.render(values)).map { ChatMessage(role: $0.role, content: $0.content) }
            } catch {
                return .failure(spec.name, "the judge prompt \(reference): \((error as? LoomError)?.message ?? "\(error)")")
            }
        } else {
            do {
                messages = try JudgePrompt.messages(for: spec, row: row)
            } catch {
                return .failure(spec.name, "\(error)")
            }
        }
        let body = JSONValue.object([
            "model": .string(options.model ?? ""), "temperature": .int(0),
            "messages": .array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) }),
        ])
        var attempts = 0
        while true {
            attempts += 1
            do {
                guard case .complete(let bytes, _) = try await gateway.chat(body.jsonBytes, caller: GatewayCaller(workspace: workspace)),
                    let value = try? JSONValue.parse(bytes)
                else { return .failure(spec.name, "the judge did not answer a whole completion") }
                return Evaluator.judgeResult(spec, reply: Gateway.answerText(value))
            } catch {
                let wait = error.headers.first { $0.0 == "retry-after" }.flatMap { Double($0.1) } ?? 1
                if error.status == 429, error.code == "rate_limit_exceeded", attempts < Self.rateLimitAttempts, wait <= Self.longestWait {
                    try? await Task.sleep(for: .seconds(max(0.05, wait)))
                    continue
                }
                return .failure(spec.name, "the judge's route \(options.model ?? ""): \(error.message)")
            }
        }
    }
}
