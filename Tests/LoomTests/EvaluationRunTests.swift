import AsyncHTTPClient
import Foundation
import LoomCore
import LoomData
import LoomStore
import LoomTracking
import LoomTesting
import Testing

@testable import LoomGenAI

/// Stored evaluation runs (docs/evaluation.md, "Runs") over a real SQLite store: rows written
/// as they finish, a stopped run resumed with only the rows it lacks, one runner at a time,
/// registered-dataset rows read with their types, the per-row diff of two variants.
@Suite("Evaluation runs")
struct EvaluationRunTests {
    static let flow = """
        kind: flow
        name: echo
        inputs: {question: string}
        nodes:
          - name: ask
            kind: prompt
            template: "echo: {{q}}"
            variables: {q: "${inputs.question}"}
            variants:
              loud: {template: "reply to {{q}}"}
        outputs: {answer: "${ask.text}"}
        """
    static let spec = """
        kind: evaluation
        name: echo-eval
        variants: {quiet: {}, loud: {ask: loud}}
        concurrency: 2
        evaluators: [{kind: exact_match}, {kind: token_f1}]
        """

    static func service(_ tracking: TrackingService) -> EvaluationService {
        let gateway = Gateway(store: tracking.store, client: HTTPClient.shared, logger: TestStore.logger)
        let indexes = IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: nil, sourcesRoot: nil, logger: TestStore.logger)
        let runner = EvaluationRunner(flows: FlowRunner(gateway: gateway, indexes: indexes, client: HTTPClient.shared), gateway: gateway)
        return EvaluationService(runner: runner, store: tracking.store, logger: TestStore.logger)
    }

    static let rows: [[String: JSONValue]] = (1...7).map { ["question": .string("q\($0)"), "expected": .string("echo: q\($0)")] }

    @Test func runsAreStoredResumedAndHeldByOneRunner() async throws {
        try await withTestStore(.sqlite) { _, tracking in
            let service = Self.service(tracking)
            let ws = Workspace.defaultName
            let run = try await service.create(specText: Self.spec, flowText: Self.flow, rows: Self.rows, dataset: "inline", failUnder: "exact_match=1", workspace: ws)
            let before = try await service.view(id: run.id, workspace: ws)
            #expect(before.status == "running" && before.rowsDone == 0 && before.rowCount == 7)
            #expect(before.report?.passed == false, "no row has run: the gate cannot pass")

            let report = try await service.execute(id: run.id, workspace: ws, created: true)
            #expect(report.id == run.id && report.status == "finished")
            let quiet = report.variants.first { $0.name == "quiet" }
            let loud = report.variants.first { $0.name == "loud" }
            #expect(quiet?.aggregates["exact_match"]?.mean == 1.0 && loud?.aggregates["exact_match"]?.mean == 0.0)
            #expect(quiet?.passed == true && loud?.passed == false && !report.passed)
            let stored = try await tracking.store.evaluationRows(runId: run.id, variant: nil)
            #expect(stored.count == 14 && Set(stored.map(\.variant)) == ["quiet", "loud"])
            let view = try await service.view(id: run.id, workspace: ws)
            #expect(view.status == "finished" && view.rowsDone == 14 && view.passed == false)
            #expect(view.report?.variants.map { $0.rows.count } == [7, 7] && view.report?.comparison?.winsB == 7, "variants run in name order: loud is A")

            // Diff: every row differs, quiet wins on exact match.
            let diff = try EvaluationDiff(report: try #require(view.report), a: nil, b: nil, metric: nil, changedOnly: true, limit: 3)
            #expect(diff.a == "loud" && diff.b == "quiet" && diff.metric == "exact_match" && diff.winsB == 7 && diff.rows.count == 3)
            #expect(diff.rows.allSatisfy { $0.winner == .b && $0.delta == 1 && $0.a.answer != $0.b.answer })
            let swapped = try EvaluationDiff(report: view.report!, a: "quiet", b: "loud", metric: "token_f1", changedOnly: false, limit: 100)
            #expect(swapped.winsA == 7 && swapped.rows.count == 7 && swapped.rows.allSatisfy { ($0.delta ?? 0) < 0 })
            #expect(throws: LoomError.self) { try EvaluationDiff(report: view.report!, a: "nope", b: nil, metric: nil, changedOnly: false, limit: 5) }
            #expect(throws: LoomError.self) { try EvaluationDiff(report: view.report!, a: nil, b: nil, metric: "bleu", changedOnly: false, limit: 5) }

            // A run is held by one runner: a second while the first's heartbeat is fresh is refused.
            let held = try await service.create(specText: Self.spec, flowText: Self.flow, rows: Self.rows, dataset: "inline", failUnder: nil, workspace: ws)
            await #expect(throws: LoomError.self) { _ = try await service.execute(id: held.id, workspace: ws) }
            await #expect(throws: LoomError.self) { try await service.delete(id: held.id, workspace: ws) }
            await #expect(throws: LoomError.self) { _ = try await service.view(id: held.id, workspace: "elsewhere") }
        }
    }

    @Test func aStoppedRunResumesWithTheRowsItLacks() async throws {
        try await withTestStore(.sqlite) { _, tracking in
            let service = Self.service(tracking)
            let ws = Workspace.defaultName
            // A run whose runner stopped two minutes ago after recording rows 1 and 2 of "quiet".
            let old = Clock.nowMillis() - 120_000
            let run = EvaluationRunRecord(
                id: "stopped", workspace: ws, name: "echo-eval", createdBy: "ann", creationTime: old, specText: Self.spec, flowText: Self.flow,
                dataset: "inline", rowsText: EvaluationDataset.jsonLines(Self.rows), rowCount: 7)
            try await tracking.store.createEvaluationRun(run)
            let scores = #"[{"name":"exact_match","score":1},{"name":"token_f1","score":1}]"#
            try await tracking.store.addEvaluationRows([
                EvaluationRowRecord(runId: "stopped", variant: "quiet", row: 1, question: "q1", answer: "recorded before", latencyMs: 1, scores: scores),
                EvaluationRowRecord(runId: "stopped", variant: "quiet", row: 2, question: "q2", latencyMs: 1, error: "row 2: upstream 503", scores: "[]"),
            ])
            #expect(try await service.list(workspace: ws, name: nil, limit: 10).first?.status == "interrupted")

            let report = try await service.execute(id: "stopped", workspace: ws)
            let quiet = try #require(report.variants.first { $0.name == "quiet" })
            #expect(quiet.rows.count == 7 && quiet.rows[0].answer == "recorded before", "row 1 was not run again")
            #expect(quiet.rows[1].error != nil && quiet.failedRows == 1, "a failed row stays failed without retry_failed")
            #expect(quiet.rows[2].answer == "echo: q3")
            let retried = try await service.execute(id: "stopped", workspace: ws, retryFailed: true)
            let again = try #require(retried.variants.first { $0.name == "quiet" })
            #expect(again.failedRows == 0 && again.rows[1].answer == "echo: q2" && again.rows[0].answer == "recorded before")
            #expect(try await tracking.store.evaluationRows(runId: "stopped", variant: "quiet").count == 7)
            try await service.delete(id: "stopped", workspace: ws)
            #expect(try await service.list(workspace: ws, name: nil, limit: 10).isEmpty)
        }
    }

    @Test func badRunsAreRefusedBeforeAnythingIsStored() async throws {
        try await withTestStore(.sqlite) { _, tracking in
            let service = Self.service(tracking)
            let ws = Workspace.defaultName
            await #expect(throws: LoomError.self) {
                _ = try await service.create(specText: Self.spec, flowText: Self.flow, rows: [], dataset: "inline", failUnder: nil, workspace: ws)
            }
            await #expect(throws: LoomError.self) {
                _ = try await service.create(specText: Self.spec, flowText: Self.flow, rows: Self.rows, dataset: "inline", failUnder: "f1=>", workspace: ws)
            }
            await #expect(throws: LoomError.self) {
                _ = try await service.create(
                    specText: Self.spec.replacingOccurrences(of: "ask: loud", with: "ask: shout"), flowText: Self.flow, rows: Self.rows, dataset: "inline",
                    failUnder: nil, workspace: ws)
            }
            let stored = try await service.list(workspace: ws, name: nil, limit: 10)
            #expect(stored.isEmpty)
        }
    }

    @Test func datasetRowsKeepTheirTypes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-evalds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = dir.appendingPathComponent("qa.csv")
        try "question,expected,relevant,k\nwhy,because,\"[\"\"a.md\"\",\"\"b.md\"\"]\",3\nhow,,[],\n".write(to: csv, atomically: true, encoding: .utf8)
        let rows = try EvaluationDataset.rows(try TableFiles.list(csv.path))
        #expect(rows.count == 2 && rows[0]["question"] == .string("why") && rows[0]["relevant"]?.arrayValue?.count == 2)
        #expect(rows[0]["k"]?.doubleValue == 3 && rows[1]["expected"] == nil)
        let jsonl = dir.appendingPathComponent("qa.jsonl")
        try "{\"question\": \"q\", \"relevant\": [\"x\"], \"meta\": {\"lang\": \"en\"}, \"ok\": true}\n".write(to: jsonl, atomically: true, encoding: .utf8)
        let j = try EvaluationDataset.rows(try TableFiles.list(jsonl.path))
        #expect(j[0]["relevant"]?.arrayValue == [.string("x")] && j[0]["meta"]?["lang"]?.stringValue == "en" && j[0]["ok"] == .bool(true))
        #expect(throws: LoomError.self) { _ = try EvaluationDataset.rows(try TableFiles.list(jsonl.path), limit: 0) }
        let text = EvaluationDataset.jsonLines(j)
        #expect(try EvaluationDataset.parse(jsonLines: text) == j)
    }
}
