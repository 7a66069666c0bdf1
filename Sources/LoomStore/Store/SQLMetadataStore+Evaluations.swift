import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    // MARK: Flows

    public func applyFlow(_ flow: FlowVersion) async throws -> (FlowVersion, changed: Bool) {
        let outcome: (FlowVersion, Bool) = try await write("apply_flow", "flow", entityIDFrom: { "\($0.0.workspace)/\($0.0.name)@\($0.0.version)" }) { db in
            let newest = try await db.raw("""
                SELECT * FROM flow_versions WHERE workspace = \(bind: flow.workspace) AND name = \(bind: flow.name) ORDER BY version DESC LIMIT 1
                """).first().map(Self.flowVersion)
            if let newest, newest.specText == flow.specText { return (newest, false) }
            var saved = flow
            saved.version = (newest?.version ?? 0) + 1
            try await db.raw("""
                INSERT INTO flow_versions (workspace, name, version, spec_text, created_by, creation_time)
                VALUES (\(bind: saved.workspace), \(bind: saved.name), \(bind: saved.version), \(bind: saved.specText), \(bind: saved.createdBy),
                  \(bind: saved.creationTime))
                """).run()
            return (saved, true)
        }
        return (outcome.0, changed: outcome.1)
    }

    public func flows(workspace: String) async throws -> [FlowVersion] {
        try await read { db in
            try await db.raw("""
                SELECT f.* FROM flow_versions f
                JOIN (SELECT name, MAX(version) AS v FROM flow_versions WHERE workspace = \(bind: workspace) GROUP BY name) n
                  ON f.name = n.name AND f.version = n.v
                WHERE f.workspace = \(bind: workspace) ORDER BY f.name
                """).all().map(Self.flowVersion)
        }
    }

    public func flowVersion(workspace: String, name: String, version: Int64?) async throws -> FlowVersion? {
        try await read { db in
            let which: SQLQueryString = version.map { "AND version = \(bind: $0)" } ?? ""
            return try await db.raw("""
                SELECT * FROM flow_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) \(which) ORDER BY version DESC LIMIT 1
                """).first().map(Self.flowVersion)
        }
    }

    public func flowVersions(workspace: String, name: String) async throws -> [FlowVersion] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM flow_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) ORDER BY version DESC
                """).all().map(Self.flowVersion)
        }
    }

    public func deleteFlow(workspace: String, name: String) async throws -> Bool {
        try await write("delete_flow", "flow", workspace + "/" + name) { db in
            guard try await db.raw("SELECT name FROM flow_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) LIMIT 1").first() != nil
            else { return false }
            try await db.raw("DELETE FROM flow_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name)").run()
            return true
        }
    }

    static func flowVersion(_ row: any SQLRow) throws -> FlowVersion {
        FlowVersion(
            workspace: try row.string("workspace"), name: try row.string("name"), version: try row.int64("version"), specText: try row.string("spec_text"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"))
    }

    // MARK: Evaluation runs

    public func createEvaluationRun(_ run: EvaluationRunRecord) async throws {
        try await write("create_evaluation_run", "evaluation_run", run.id) { db in
            try await db.raw("""
                INSERT INTO evaluation_runs (id, workspace, name, status, created_by, creation_time, heartbeat_time, end_time, spec_text, flow_text,
                  flow_ref, dataset, rows_text, row_count, fail_under, passed, error)
                VALUES (\(bind: run.id), \(bind: run.workspace), \(bind: run.name), \(bind: run.status.rawValue), \(bind: run.createdBy),
                  \(bind: run.creationTime), \(bind: run.heartbeatTime), \(bind: run.endTime), \(bind: run.specText), \(bind: run.flowText),
                  \(bind: run.flowRef), \(bind: run.dataset), \(bind: run.rowsText), \(bind: run.rowCount), \(bind: run.failUnder),
                  \(bind: run.passed.map { $0 ? 1 : 0 }), \(bind: run.error))
                """).run()
        }
    }

    public func evaluationRun(id: String) async throws -> EvaluationRunRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM evaluation_runs WHERE id = \(bind: id)").first().map { try Self.evaluationRun($0, withRows: true) }
        }
    }

    public func evaluationRuns(workspace: String, name: String?, limit: Int) async throws -> [EvaluationRunRecord] {
        try await read { db in
            let filter: SQLQueryString = name.map { "AND name = \(bind: $0)" } ?? ""
            return try await db.raw("""
                SELECT id, workspace, name, status, created_by, creation_time, heartbeat_time, end_time, spec_text, flow_text, flow_ref, dataset,
                  row_count, fail_under, passed, error
                FROM evaluation_runs WHERE workspace = \(bind: workspace) \(filter)
                ORDER BY creation_time DESC, id DESC LIMIT \(bind: max(1, min(limit, 1000)))
                """).all().map { try Self.evaluationRun($0, withRows: false) }
        }
    }

    public func claimEvaluationRun(id: String, staleBefore: Millis, now: Millis) async throws -> Bool {
        try await writeUnaudited { db in
            guard let row = try await db.raw("SELECT status, heartbeat_time FROM evaluation_runs WHERE id = \(bind: id)").first() else {
                throw LoomError.notFound("No evaluation run \(id)")
            }
            if try row.string("status") == EvaluationRunRecord.Status.running.rawValue, try row.int64("heartbeat_time") >= staleBefore { return false }
            try await db.raw("""
                UPDATE evaluation_runs SET status = 'running', heartbeat_time = \(bind: now), end_time = NULL, passed = NULL, error = NULL
                WHERE id = \(bind: id)
                """).run()
            return true
        }
    }

    public func heartbeatEvaluationRun(id: String, now: Millis) async throws {
        try await writeUnaudited { db in
            try await db.raw("UPDATE evaluation_runs SET heartbeat_time = \(bind: now) WHERE id = \(bind: id) AND status = 'running'").run()
        }
    }

    public func finishEvaluationRun(id: String, status: EvaluationRunRecord.Status, passed: Bool?, error: String?, endTime: Millis) async throws {
        try await write("finish_evaluation_run", "evaluation_run", id, detail: status.rawValue) { db in
            try await db.raw("""
                UPDATE evaluation_runs SET status = \(bind: status.rawValue), passed = \(bind: passed.map { $0 ? 1 : 0 }), error = \(bind: error),
                  end_time = \(bind: endTime), heartbeat_time = \(bind: endTime)
                WHERE id = \(bind: id)
                """).run()
        }
    }

    public func addEvaluationRows(_ rows: [EvaluationRowRecord]) async throws {
        guard !rows.isEmpty else { return }
        try await writeUnaudited { db in
            var start = 0
            while start < rows.count {
                let part = rows[start..<min(start + 100, rows.count)]
                start += part.count
                var insert = db.insert(into: "evaluation_rows")
                    .columns("run_id", "variant", "row_number", "question", "answer", "trace_id", "latency_ms", "error", "scores")
                for r in part {
                    insert = insert.values(
                        SQLBind(r.runId), SQLBind(r.variant), SQLBind(r.row), SQLBind(r.question), SQLBind(r.answer), SQLBind(r.traceId),
                        SQLBind(r.latencyMs), SQLBind(r.error), SQLBind(r.scores))
                }
                try await insert.onConflict(with: ["run_id", "variant", "row_number"]) { update in
                    for column in ["question", "answer", "trace_id", "latency_ms", "error", "scores"] { update.set(excludedValueOf: column) }
                    return update
                }.run()
            }
        }
    }

    public func evaluationRows(runId: String, variant: String?) async throws -> [EvaluationRowRecord] {
        try await read { db in
            let filter: SQLQueryString = variant.map { "AND variant = \(bind: $0)" } ?? ""
            return try await db.raw("""
                SELECT * FROM evaluation_rows WHERE run_id = \(bind: runId) \(filter) ORDER BY variant, row_number
                """).all().map(Self.evaluationRow)
        }
    }

    public func deleteEvaluationRun(id: String) async throws -> Bool {
        try await write("delete_evaluation_run", "evaluation_run", id) { db in
            guard try await db.raw("SELECT id FROM evaluation_runs WHERE id = \(bind: id)").first() != nil else { return false }
            try await db.raw("DELETE FROM evaluation_rows WHERE run_id = \(bind: id)").run()
            try await db.raw("DELETE FROM evaluation_runs WHERE id = \(bind: id)").run()
            return true
        }
    }

    static func evaluationRun(_ row: any SQLRow, withRows: Bool) throws -> EvaluationRunRecord {
        let status = try row.string("status")
        guard let parsed = EvaluationRunRecord.Status(rawValue: status) else { throw LoomError.internalError("evaluation run status '\(status)'") }
        return EvaluationRunRecord(
            id: try row.string("id"), workspace: try row.string("workspace"), name: try row.string("name"), status: parsed,
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), heartbeatTime: try row.int64("heartbeat_time"),
            endTime: try row.optionalInt64("end_time"), specText: try row.string("spec_text"), flowText: try row.string("flow_text"),
            flowRef: try row.optionalString("flow_ref"), dataset: try row.string("dataset"), rowsText: withRows ? try row.string("rows_text") : "",
            rowCount: try row.int64("row_count"), failUnder: try row.optionalString("fail_under"), passed: try row.optionalInt64("passed").map { $0 != 0 },
            error: try row.optionalString("error"))
    }

    static func evaluationRow(_ row: any SQLRow) throws -> EvaluationRowRecord {
        EvaluationRowRecord(
            runId: try row.string("run_id"), variant: try row.string("variant"), row: try row.int64("row_number"), question: try row.string("question"),
            answer: try row.optionalString("answer"), traceId: try row.optionalString("trace_id"), latencyMs: try row.optionalDouble("latency_ms") ?? 0,
            error: try row.optionalString("error"), scores: try row.string("scores"))
    }
}
