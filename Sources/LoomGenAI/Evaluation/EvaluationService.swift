import Foundation
import Logging
import LoomCore
import LoomStore

/// Stored, resumable evaluation runs (docs/evaluation.md, "Runs"): a run is recorded with its
/// spec, flow and rows before any row runs; each row's result is written as it finishes; a run
/// that stopped (its server went away, a deploy restarted it) resumes with the rows it lacks.
/// One runner holds a run at a time, by a heartbeat in the store, so replicas share the table.
public final class EvaluationService: Sendable {
    public let runner: EvaluationRunner
    let store: any MetadataStore
    let logger: Logger

    /// A `running` run whose heartbeat is older than this has lost its runner.
    public static let staleAfter: Millis = 30_000
    static let heartbeatEvery = Duration.seconds(5)

    public init(runner: EvaluationRunner, store: any MetadataStore, logger: Logger) {
        self.runner = runner
        self.store = store
        self.logger = logger
    }

    /// What a run is, as the API shows it: its record (without its rows' text) and its report so far.
    public struct RunView: Sendable, Encodable {
        public var id: String
        public var name: String
        /// `running`, `finished`, `failed`, or `interrupted` (running, but its runner stopped).
        public var status: String
        public var createdBy: String
        public var creationTime: Millis
        public var endTime: Millis?
        public var flow: String?
        public var dataset: String
        public var rowCount: Int64
        /// Rows with a result, over all variants.
        public var rowsDone: Int64
        public var failUnder: String?
        public var passed: Bool?
        public var error: String?
        public var report: EvaluationReport?
    }

    /// Checks an evaluation whole (spec, flow, gates, rows) and records it as a new run, held
    /// by its creator: run it with `execute(id:workspace:created:)`, `created` true.
    public func create(
        specText: String, flowText: String, flowRef: String? = nil, rows: [[String: JSONValue]], dataset: String, failUnder: String?,
        workspace: String
    ) async throws -> EvaluationRunRecord {
        let spec = try EvaluationSpec.parse(yaml: specText)
        let flow = try FlowSpec.parse(yaml: flowText)
        try runner.check(spec, flow: flow)
        if let failUnder { _ = try Self.gate(failUnder) }
        guard !rows.isEmpty else { throw LoomError.invalidParameter("rows: the dataset has no rows") }
        guard rows.count <= EvaluationRunner.maxRows else { throw LoomError.invalidParameter("rows: at most 100,000 rows per run") }
        let now = Clock.nowMillis()
        let run = EvaluationRunRecord(
            id: UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), workspace: workspace, name: spec.name,
            createdBy: AuditContext.current.actor, creationTime: now, heartbeatTime: now, specText: specText, flowText: flowText, flowRef: flowRef,
            dataset: dataset, rowsText: EvaluationDataset.jsonLines(rows), rowCount: Int64(rows.count), failUnder: failUnder)
        try await store.createEvaluationRun(run)
        return run
    }

    static func gate(_ text: String?) throws(LoomError) -> Gate? {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        do { return try Gate(parsing: text) } catch { throw .invalidParameter("fail_under: \(error)") }
    }

    /// Runs the rows a run lacks (with `retryFailed`, also those that failed) and records the
    /// outcome. A run another runner holds is a conflict; a finished run with nothing to do
    /// returns its report. `created`: the caller just created the run (and so holds it);
    /// `force`: take the run over even though its heartbeat is fresh (its runner is known dead).
    public func execute(id: String, workspace: String, retryFailed: Bool = false, created: Bool = false, force: Bool = false) async throws -> EvaluationReport {
        guard let run = try await store.evaluationRun(id: id), run.workspace == workspace else {
            throw LoomError.notFound("No evaluation run \(id) in workspace \(workspace)")
        }
        if !(created && run.status == .running) { try await claim(run, force: force) }
        let store = self.store
        // The heartbeat that tells other replicas this run is held.
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.heartbeatEvery)
                if Task.isCancelled { break }
                try? await store.heartbeatEvaluationRun(id: id, now: Clock.nowMillis())
            }
        }
        defer { heartbeat.cancel() }
        do {
            let spec = try EvaluationSpec.parse(yaml: run.specText)
            let flow = try FlowSpec.parse(yaml: run.flowText)
            let rows = try EvaluationDataset.parse(jsonLines: run.rowsText)
            var done = try Self.results(try await store.evaluationRows(runId: id, variant: nil))
            if retryFailed { done = done.mapValues { $0.filter { $0.error == nil } } }
            let encoder = Self.encoder
            var report = try await runner.run(
                spec, flow: flow, rows: rows, workspace: workspace, failUnder: try Self.gate(run.failUnder), done: done,
                record: { variant, results in
                    try await store.addEvaluationRows(try results.map { try Self.record($0, run: id, variant: variant, encoder: encoder) })
                })
            try await store.finishEvaluationRun(id: id, status: .finished, passed: report.passed, error: nil, endTime: Clock.nowMillis())
            report.id = id
            report.status = EvaluationRunRecord.Status.finished.rawValue
            return report
        } catch {
            let message = (error as? LoomError)?.message ?? "\(error)"
            logger.warning("evaluation run \(id) failed: \(message)")
            try? await store.finishEvaluationRun(id: id, status: .failed, passed: nil, error: message, endTime: Clock.nowMillis())
            throw error
        }
    }

    /// Makes this server the run's runner: refused while another holds it (its heartbeat is
    /// fresh), unless `force`.
    public func claim(id: String, workspace: String, force: Bool) async throws {
        guard let run = try await store.evaluationRun(id: id), run.workspace == workspace else {
            throw LoomError.notFound("No evaluation run \(id) in workspace \(workspace)")
        }
        try await claim(run, force: force)
    }

    func claim(_ run: EvaluationRunRecord, force: Bool) async throws {
        let now = Clock.nowMillis()
        guard try await store.claimEvaluationRun(id: run.id, staleBefore: force ? Millis.max : now - Self.staleAfter, now: now) else {
            throw LoomError.invalidState(
                "Evaluation run \(run.id) is running (its heartbeat is \(max(0, now - run.heartbeatTime) / 1000) s old); resume it once it has stopped "
                    + "for \(Self.staleAfter / 1000) s, or with force if its server is gone")
        }
    }

    /// A run as it stands, with its report computed from the rows recorded so far.
    public func view(id: String, workspace: String, withRows: Bool = true) async throws -> RunView {
        guard let run = try await store.evaluationRun(id: id), run.workspace == workspace else {
            throw LoomError.notFound("No evaluation run \(id) in workspace \(workspace)")
        }
        let recorded = try await store.evaluationRows(runId: id, variant: nil)
        var view = Self.view(run, rowsDone: Int64(recorded.count))
        if let spec = try? EvaluationSpec.parse(yaml: run.specText) {
            let duration = Double((run.endTime ?? Clock.nowMillis()) - run.creationTime)
            var report = EvaluationRunner.report(
                spec, rows: Int(run.rowCount), results: try Self.results(recorded), gate: (try? Self.gate(run.failUnder)) ?? spec.failUnder,
                durationMs: duration)
            report.id = id
            report.status = view.status
            if !withRows { for i in report.variants.indices { report.variants[i].rows = [] } }
            view.report = report
        }
        return view
    }

    /// A workspace's runs, newest first.
    public func list(workspace: String, name: String?, limit: Int) async throws -> [RunView] {
        try await store.evaluationRuns(workspace: workspace, name: name, limit: limit).map { Self.view($0, rowsDone: nil) }
    }

    /// The flow a run runs (for the permission checks of a resume).
    public func flow(id: String, workspace: String) async throws -> FlowSpec {
        guard let run = try await store.evaluationRun(id: id), run.workspace == workspace else {
            throw LoomError.notFound("No evaluation run \(id) in workspace \(workspace)")
        }
        return try FlowSpec.parse(yaml: run.flowText)
    }

    public func delete(id: String, workspace: String) async throws {
        guard let run = try await store.evaluationRun(id: id), run.workspace == workspace else {
            throw LoomError.notFound("No evaluation run \(id) in workspace \(workspace)")
        }
        if run.status == .running, run.heartbeatTime >= Clock.nowMillis() - Self.staleAfter {
            throw LoomError.invalidState("Evaluation run \(id) is running; delete it once it stops")
        }
        _ = try await store.deleteEvaluationRun(id: id)
    }

    static func view(_ run: EvaluationRunRecord, rowsDone: Int64?) -> RunView {
        var status = run.status.rawValue
        if run.status == .running, run.heartbeatTime < Clock.nowMillis() - staleAfter { status = "interrupted" }
        return RunView(
            id: run.id, name: run.name, status: status, createdBy: run.createdBy, creationTime: run.creationTime, endTime: run.endTime,
            flow: run.flowRef, dataset: run.dataset, rowCount: run.rowCount, rowsDone: rowsDone ?? 0, failUnder: run.failUnder, passed: run.passed,
            error: run.error)
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }()

    static func record(_ r: EvaluationReport.RowResult, run: String, variant: String, encoder: JSONEncoder) throws -> EvaluationRowRecord {
        EvaluationRowRecord(
            runId: run, variant: variant, row: Int64(r.row), question: r.question, answer: r.answer, traceId: r.traceId, latencyMs: r.latencyMs,
            error: r.error, scores: String(decoding: try encoder.encode(r.scores), as: UTF8.self))
    }

    static func results(_ records: [EvaluationRowRecord]) throws -> [String: [EvaluationReport.RowResult]] {
        let decoder = JSONDecoder()
        var out: [String: [EvaluationReport.RowResult]] = [:]
        for r in records {
            let scores = (try? decoder.decode([EvaluatorResult].self, from: Data(r.scores.utf8))) ?? []
            out[r.variant, default: []].append(EvaluationReport.RowResult(
                row: Int(r.row), question: r.question, answer: r.answer, traceId: r.traceId, latencyMs: r.latencyMs, error: r.error, scores: scores))
        }
        return out
    }
}
