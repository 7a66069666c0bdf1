import Foundation
import LoomCore
import LoomData
import LoomGenAI
import LoomMonitoring
import Synchronization

/// Generation signals (docs/monitoring.md, "Generation quality and safety"): online evaluation
/// of an LLM app's collected traffic. A pass samples the window's answers (by correlation id),
/// finds each one's question, answer and context in the collected request and response, scores
/// them with evaluation evaluators (judges through the gateway), and checks the means against
/// the signal's rules; a failed rule fails the signal, which opens an alert like any other.
extension MonitorService {
    /// Checks a spec's generation evaluators (they are evaluation evaluators, docs/evaluation.md).
    static func generationEvaluators(_ signal: MonitorSpec.Signal, field: String) throws -> [EvaluatorSpec] {
        guard let g = signal.generation else { return [] }
        guard let strict = StrictJSON.parse(g.evaluators.jsonString), case .array(let items) = strict else {
            throw LoomError.invalidParameter("\(field).evaluators: must list evaluators")
        }
        let evaluators: [EvaluatorSpec]
        do {
            evaluators = try EvaluatorSpec.decodeList(items, path: "\(field).evaluators")
        } catch {
            throw LoomError.invalidParameter(error.description)
        }
        for (i, e) in evaluators.enumerated() {
            if case .llmJudge(let j) = e.options, (j.model ?? "").isEmpty {
                throw LoomError.invalidParameter("\(field).evaluators[\(i)].model: an llm_judge needs the gateway route that judges")
            }
            if [.latency, .cost, .embeddingSimilarity, .hitRate, .mrr, .ndcg].contains(e.kind) {
                throw LoomError.invalidParameter("\(field).evaluators[\(i)].kind: \(e.kind.rawValue) needs what collected traffic does not hold")
            }
        }
        let names = Set(evaluators.map(\.name))
        for metric in signal.metrics.keys.sorted() where !names.contains(metric) {
            throw LoomError.invalidParameter("\(field).metrics.\(metric): no evaluator of that name (it has: \(names.sorted().joined(separator: ", ")))")
        }
        return evaluators
    }

    /// Checks every generation signal of a spec.
    static func checkGeneration(_ spec: MonitorSpec) throws {
        for (i, s) in spec.signals.enumerated() where s.kind.isGeneration {
            _ = try generationEvaluators(s, field: "signals[\(i)]")
        }
    }

    /// The outcome of each generation signal over the window.
    func generationOutcomes(_ spec: MonitorSpec, workspace: String, bounds: (start: Millis, end: Millis)) async throws -> [MonitorEvaluation.Outcome] {
        let signals = spec.signals.filter { $0.kind.isGeneration }
        guard !signals.isEmpty else { return [] }
        let folders = try Self.hourFolders(workspace: workspace, endpoint: spec.endpoint, labels: false, start: bounds.start, end: bounds.end)
        // One read for every signal, keeping the largest sample any of them takes.
        let share = signals.compactMap { $0.generation?.sample }.max() ?? 1
        let (records, total) = try await withStaging { staging in
            let local = try await localFolders(folders, staging: staging)
            return try await DataWork.run {
                try CollectedRecords.read(folders: local, from: bounds.start, to: bounds.end, deployment: spec.deployment, share: share)
            }
        }
        var out: [MonitorEvaluation.Outcome] = []
        for (i, signal) in spec.signals.enumerated() where signal.kind.isGeneration {
            out.append(try await generationOutcome(signal, field: "signals[\(i)]", records: records, total: total, workspace: workspace))
        }
        return out
    }

    /// One signal over the window's sampled exchanges (`records`, a superset of its own sample)
    /// of `total` answered in all.
    func generationOutcome(
        _ signal: MonitorSpec.Signal, field: String, records: [CollectedExchange], total: Int, workspace: String
    ) async throws -> MonitorEvaluation.Outcome {
        guard let g = signal.generation else { throw LoomError.internalError("\(signal.name) is not a generation signal") }
        func detail(_ object: [String: JSONValue]) -> String { JSONValue.object(object).jsonString }
        guard let scorer = generationScorer.withLock({ $0 }) else {
            return MonitorEvaluation.Outcome(
                signal: signal.name, kind: signal.kind, rows: 0, value: nil, passed: true, skipped: true,
                summary: "no gateway on this server to score answers", detail: detail(["skipped": .string("no gateway")]))
        }
        let evaluators = try Self.generationEvaluators(signal, field: field)
        let sample = CollectedRecords.sample(records, share: g.sample, limit: g.maxRows)
        guard !sample.isEmpty else {
            let why = total == 0 ? "no answers collected in the window" : "none of the window's \(total) answers fell in the \(g.sample) sample"
            return MonitorEvaluation.Outcome(
                signal: signal.name, kind: signal.kind, rows: 0, value: nil, passed: true, skipped: true, summary: why,
                detail: detail(["skipped": .string(why), "answers": .int(Int64(total))]))
        }
        // Each answer scored, four at a time (judges are calls through the gateway).
        var rows = [(CollectedExchange, [EvaluatorResult])?](repeating: nil, count: sample.count)
        await withTaskGroup(of: (Int, [EvaluatorResult]).self) { group in
            var next = 0
            func start() {
                guard next < sample.count else { return }
                let i = next
                next += 1
                let r = sample[i]
                let row = EvaluationRow(
                    question: CollectedRecords.value(at: g.question, in: r.request).map(FlowValues.text) ?? "",
                    answer: CollectedRecords.value(at: g.answer, in: r.response).map(FlowValues.text) ?? "",
                    context: g.context.flatMap { CollectedRecords.value(at: $0, in: r.response) }.map(FlowValues.text))
                group.addTask { (i, await scorer.score(row, evaluators: evaluators, workspace: workspace)) }
            }
            for _ in 0..<4 { start() }
            for await (i, scores) in group {
                rows[i] = (sample[i], scores)
                start()
            }
        }
        let scored = rows.compactMap { $0 }
        let aggregates = Aggregates.byName(scored.flatMap(\.1))
        var failures: [String] = []
        var checks: [JSONValue] = []
        for (metric, rule) in signal.metrics.sorted(by: { $0.key < $1.key }) {
            let mean = aggregates[metric]?.mean
            var ok = mean != nil
            if let mean, let min = rule.min, mean < min { ok = false }
            if let mean, let max = rule.max, mean > max { ok = false }
            let shown = mean.map { String(format: "%.3g", $0) } ?? "not scored"
            let bounds = [rule.min.map { "min \(String(format: "%g", $0))" }, rule.max.map { "max \(String(format: "%g", $0))" }].compactMap { $0 }.joined(separator: ", ")
            if !ok { failures.append("\(metric) \(shown) (\(bounds))") }
            checks.append(.object([
                "metric": .string(metric), "mean": mean.map { .number($0, raw: nil) } ?? .null, "passed": .bool(ok),
                "min": rule.min.map { .number($0, raw: nil) } ?? .null, "max": rule.max.map { .number($0, raw: nil) } ?? .null,
            ]))
        }
        // The answers that scored worst on a failing rule, for people to read.
        var examples: [JSONValue] = []
        for (record, scores) in scored where examples.count < 5 {
            let bad = scores.filter { s in
                guard let rule = signal.metrics[s.name] else { return s.error != nil }
                if let score = s.score { return (rule.min.map { score < $0 } ?? false) || (rule.max.map { score > $0 } ?? false) }
                return true
            }
            guard !bad.isEmpty else { continue }
            examples.append(.object([
                "correlation_id": .string(record.correlationID), "time_ms": .int(record.time),
                "answer": .string(String((CollectedRecords.value(at: g.answer, in: record.response).map(FlowValues.text) ?? "").prefix(300))),
                "scores": .array(bad.map { s in
                    .object(["name": .string(s.name), "score": s.score.map { .number($0, raw: nil) } ?? .null, "reason": .string(s.reason ?? s.error ?? "")])
                }),
            ]))
        }
        let first = signal.metrics.keys.sorted().first.flatMap { aggregates[$0]?.mean }
        let summary = failures.isEmpty
            ? "\(scored.count) of \(total) answers scored: " + checks.compactMap { c -> String? in
                guard let m = c["metric"]?.stringValue, let v = c["mean"]?.doubleValue else { return nil }
                return "\(m) \(String(format: "%.3g", v))"
            }.joined(separator: ", ")
            : "\(scored.count) of \(total) answers scored: " + failures.joined(separator: "; ")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let aggregatesJSON = (try? JSONValue.parse(Array(encoder.encode(aggregates)))) ?? .object([:])
        return MonitorEvaluation.Outcome(
            signal: signal.name, kind: signal.kind, rows: scored.count, value: first, passed: failures.isEmpty, summary: summary,
            detail: detail([
                "answers": .int(Int64(total)), "scored": .int(Int64(scored.count)), "sample": .number(g.sample, raw: nil),
                "aggregates": aggregatesJSON, "checks": .array(checks), "examples": .array(examples),
            ]))
    }
}
