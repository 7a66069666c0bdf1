import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createPipelineVersion(_ new: PipelineVersion) async throws -> (version: PipelineVersion, created: Bool) {
        let engine = self.engine
        return try await write("save_pipeline", "pipeline", entityIDFrom: { (r: (version: PipelineVersion, created: Bool)) in "\(r.version.name)/\(r.version.version)" }) { db in
            if let existing = try await db.raw("""
                SELECT * FROM pipeline_versions WHERE workspace = \(bind: new.workspace) AND name = \(bind: new.name) AND digest = \(bind: new.digest)
                """).first().map(Self.pipelineVersion) {
                return (existing, false)
            }
            if engine == .postgresql {
                // Two saves of one name must not pick the same number.
                try await db.raw("SELECT pg_advisory_xact_lock(7311003, hashtext(\(bind: new.workspace + "/" + new.name)))").run()
            }
            let next = try await db.raw("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM pipeline_versions WHERE workspace = \(bind: new.workspace) AND name = \(bind: new.name)").first()
            var v = new
            v.version = try next?.int64("next") ?? 1
            try await db.raw("""
                INSERT INTO pipeline_versions (workspace, name, version, digest, spec, created_by, creation_time)
                VALUES (\(bind: v.workspace), \(bind: v.name), \(bind: v.version), \(bind: v.digest), \(bind: v.spec), \(bind: v.createdBy), \(bind: v.creationTime))
                """).run()
            return (v, true)
        }
    }

    public func pipelineVersion(name: String, version: Int64, workspace: String) async throws -> PipelineVersion? {
        try await read { db in
            try await db.raw("SELECT * FROM pipeline_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) AND version = \(bind: version)")
                .first().map(Self.pipelineVersion)
        }
    }

    public func pipelineVersions(name: String, workspace: String) async throws -> [PipelineVersion] {
        try await read { db in
            try await db.raw("SELECT * FROM pipeline_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) ORDER BY version DESC")
                .all().map(Self.pipelineVersion)
        }
    }

    public func createPipelineRun(_ run: PipelineRun, steps: [String]) async throws {
        _ = try await write("start_pipeline_run", "pipeline_run", run.id) { db in
            try await db.raw("""
                INSERT INTO pipeline_runs (run_id, workspace, pipeline, pipeline_version, parameters_json, options_json, state, trigger_kind, tracking_run_id,
                  message, created_by, start_time, end_time)
                VALUES (\(bind: run.id), \(bind: run.workspace), \(bind: run.pipeline), \(bind: run.pipelineVersion), \(bind: run.parameters), \(bind: run.options),
                  \(bind: run.state.rawValue), \(bind: run.trigger), \(bind: run.trackingRunID), \(bind: run.message), \(bind: run.createdBy),
                  \(bind: run.startTime), \(bind: run.endTime))
                """).run()
            for step in steps {
                try await db.raw("""
                    INSERT INTO step_runs (pipeline_run_id, step, state, attempts) VALUES (\(bind: run.id), \(bind: step), 'pending', 0)
                    """).run()
            }
            return true
        }
    }

    public func pipelineRun(id: String) async throws -> PipelineRun? {
        try await read { db in try await db.raw("SELECT * FROM pipeline_runs WHERE run_id = \(bind: id)").first().map(Self.pipelineRun) }
    }

    public func pipelineRuns(pipeline: String, workspace: String, limit: Int) async throws -> [PipelineRun] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM pipeline_runs WHERE workspace = \(bind: workspace) AND pipeline = \(bind: pipeline)
                ORDER BY start_time DESC, run_id DESC LIMIT \(bind: limit)
                """).all().map(Self.pipelineRun)
        }
    }

    public func unfinishedPipelineRuns() async throws -> [PipelineRun] {
        try await read { db in
            try await db.raw("SELECT * FROM pipeline_runs WHERE state IN ('queued', 'running') ORDER BY start_time, run_id")
                .all().map(Self.pipelineRun)
        }
    }

    public func setPipelineRunState(id: String, state: PipelineRun.State, message: String?, trackingRunID: String?, at: Millis) async throws -> Bool {
        try await write("set_pipeline_run_state", "pipeline_run", id, detail: state.rawValue) { db in
            let end: Millis? = state.isFinished ? at : nil
            try await db.raw("""
                UPDATE pipeline_runs SET state = \(bind: state.rawValue), message = COALESCE(\(bind: message), message),
                  tracking_run_id = COALESCE(\(bind: trackingRunID), tracking_run_id), end_time = COALESCE(\(bind: end), end_time)
                WHERE run_id = \(bind: id) AND state NOT IN ('succeeded', 'failed', 'cancelled')
                """).run()
            let row = try await db.raw("SELECT * FROM pipeline_runs WHERE run_id = \(bind: id)").first().map(Self.pipelineRun)
            guard let row else { throw LoomError.notFound("No pipeline run \(id)") }
            return row.state == state && (!state.isFinished || row.endTime == at)
        }
    }

    public func stepRuns(pipelineRunID: String) async throws -> [StepRun] {
        try await read { db in
            try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) ORDER BY step").all().map(Self.stepRun)
        }
    }

    public func leaseStep(pipelineRunID: String, step: String, owner: String, until: Millis, now: Millis) async throws -> StepRun? {
        try await write("lease_step", "step_run", "\(pipelineRunID)/\(step)", detail: owner) { db in
            // One conditional update: of runners racing for the step, the first to commit wins,
            // and the others' condition no longer holds when they get to the row.
            try await db.raw("""
                UPDATE step_runs SET state = 'running', attempts = attempts + 1, lease_owner = \(bind: owner), lease_expiry = \(bind: until),
                  start_time = COALESCE(start_time, \(bind: now))
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)
                  AND (state = 'pending' OR (state = 'running' AND lease_expiry < \(bind: now)))
                """).run()
            let row = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            guard let row else { throw LoomError.notFound("No step \(step) in pipeline run \(pipelineRunID)") }
            return row.state == .running && row.leaseOwner == owner && row.leaseExpiry == until ? row : nil
        }
    }

    public func renewStepLease(pipelineRunID: String, step: String, owner: String, until: Millis) async throws -> Bool {
        try await write("renew_step_lease", "step_run", "\(pipelineRunID)/\(step)", detail: owner) { db in
            try await db.raw("""
                UPDATE step_runs SET lease_expiry = \(bind: until)
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step) AND state = 'running' AND lease_owner = \(bind: owner)
                """).run()
            let row = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            return row?.state == .running && row?.leaseOwner == owner && row?.leaseExpiry == until
        }
    }

    public func releaseStep(pipelineRunID: String, step: String, owner: String, message: String?) async throws -> Bool {
        try await write("release_step", "step_run", "\(pipelineRunID)/\(step)", detail: owner) { db in
            let before = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            guard let before else { throw LoomError.notFound("No step \(step) in pipeline run \(pipelineRunID)") }
            guard before.state == .running, before.leaseOwner == owner else { return false }
            try await db.raw("""
                UPDATE step_runs SET state = 'pending', lease_owner = NULL, lease_expiry = NULL, message = \(bind: message)
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step) AND state = 'running' AND lease_owner = \(bind: owner)
                """).run()
            let row = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            return row?.state == .pending && row?.leaseOwner == nil
        }
    }

    public func finishStep(
        pipelineRunID: String, step: String, owner: String?, state: StepRun.State, outputs: String?, cacheKey: String?,
        trackingRunID: String?, message: String?, at: Millis
    ) async throws -> Bool {
        guard state.isFinished else { throw LoomError.invalidParameter("a step finishes in a finished state, not \(state.rawValue)") }
        return try await write("finish_step", "step_run", "\(pipelineRunID)/\(step)", detail: state.rawValue) { db in
            let holder: SQLQueryString = owner.map { "state = 'running' AND lease_owner = \(bind: $0)" } ?? "state IN ('pending', 'ready')"
            try await db.raw("""
                UPDATE step_runs SET state = \(bind: state.rawValue), outputs_json = \(bind: outputs), cache_key = COALESCE(\(bind: cacheKey), cache_key),
                  tracking_run_id = COALESCE(\(bind: trackingRunID), tracking_run_id), message = \(bind: message), end_time = \(bind: at),
                  start_time = COALESCE(start_time, \(bind: at))
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step) AND \(holder)
                """).run()
            let row = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            guard let row else { throw LoomError.notFound("No step \(step) in pipeline run \(pipelineRunID)") }
            return row.state == state && row.endTime == at && (owner == nil || row.leaseOwner == owner)
        }
    }

    public func cachedStepRun(cacheKey: String, workspace: String) async throws -> StepRun? {
        try await read { db in
            try await db.raw("""
                SELECT s.* FROM step_runs s JOIN pipeline_runs r ON r.run_id = s.pipeline_run_id
                WHERE s.cache_key = \(bind: cacheKey) AND s.state = 'succeeded' AND r.workspace = \(bind: workspace)
                ORDER BY s.end_time DESC LIMIT 1
                """).first().map(Self.stepRun)
        }
    }

    static func pipelineVersion(_ row: any SQLRow) throws -> PipelineVersion {
        PipelineVersion(
            workspace: try row.string("workspace"), name: try row.string("name"), version: try row.int64("version"),
            digest: try row.string("digest"), spec: try row.string("spec"), createdBy: try row.string("created_by"),
            creationTime: try row.int64("creation_time"))
    }

    static func pipelineRun(_ row: any SQLRow) throws -> PipelineRun {
        let state = try row.string("state")
        guard let parsed = PipelineRun.State(rawValue: state) else { throw LoomError.internalError("pipeline run state '\(state)'") }
        return PipelineRun(
            id: try row.string("run_id"), workspace: try row.string("workspace"), pipeline: try row.string("pipeline"),
            pipelineVersion: try row.int64("pipeline_version"), parameters: try row.string("parameters_json"),
            options: try row.string("options_json"), state: parsed,
            trigger: try row.string("trigger_kind"), trackingRunID: try row.optionalString("tracking_run_id"),
            message: try row.optionalString("message"), createdBy: try row.string("created_by"), startTime: try row.int64("start_time"),
            endTime: try row.optionalInt64("end_time"))
    }

    static func stepRun(_ row: any SQLRow) throws -> StepRun {
        let state = try row.string("state")
        guard let parsed = StepRun.State(rawValue: state) else { throw LoomError.internalError("step run state '\(state)'") }
        return StepRun(
            pipelineRunID: try row.string("pipeline_run_id"), step: try row.string("step"), state: parsed,
            attempts: Int(try row.int64("attempts")), cacheKey: try row.optionalString("cache_key"), outputs: try row.optionalString("outputs_json"),
            trackingRunID: try row.optionalString("tracking_run_id"), leaseOwner: try row.optionalString("lease_owner"),
            leaseExpiry: try row.optionalInt64("lease_expiry"), message: try row.optionalString("message"),
            startTime: try row.optionalInt64("start_time"), endTime: try row.optionalInt64("end_time"),
            invocation: try row.optionalString("invocation_json"))
    }
}

extension SQLMetadataStore {
    public func applyPipeline(_ a: AppliedPipeline) async throws {
        _ = try await write("apply_pipeline", "pipeline", "\(a.name)/\(a.version)") { db in
            try await db.raw("""
                INSERT INTO applied_pipelines (workspace, name, version, directory, applied_by, applied_time)
                VALUES (\(bind: a.workspace), \(bind: a.name), \(bind: a.version), \(bind: a.directory), \(bind: a.appliedBy), \(bind: a.appliedTime))
                ON CONFLICT (workspace, name) DO UPDATE SET version = excluded.version, directory = excluded.directory,
                  applied_by = excluded.applied_by, applied_time = excluded.applied_time
                """).run()
            return true
        }
    }

    public func appliedPipelines(workspace: String?) async throws -> [AppliedPipeline] {
        try await read { db in
            let filter: SQLQueryString = workspace.map { "WHERE workspace = \(bind: $0)" } ?? ""
            return try await db.raw("SELECT * FROM applied_pipelines \(filter) ORDER BY workspace, name").all().map { row in
                AppliedPipeline(
                    workspace: try row.string("workspace"), name: try row.string("name"), version: try row.int64("version"),
                    directory: try row.optionalString("directory"), appliedBy: try row.string("applied_by"), appliedTime: try row.int64("applied_time"))
            }
        }
    }

    public func recordTriggerFiring(workspace: String, pipeline: String, trigger: String, occasion: String, pipelineRunID: String?, at: Millis) async throws -> Bool {
        try await write("fire_trigger", "pipeline", pipeline, detail: "\(trigger) \(occasion)") { db in
            // One statement: of replicas racing to fire, only the one whose row went in gets a row back.
            let inserted = try await db.raw("""
                INSERT INTO trigger_firings (workspace, pipeline, trigger_key, occasion, pipeline_run_id, fired_time)
                VALUES (\(bind: workspace), \(bind: pipeline), \(bind: trigger), \(bind: occasion), \(bind: pipelineRunID), \(bind: at))
                ON CONFLICT (workspace, pipeline, trigger_key, occasion) DO NOTHING RETURNING occasion
                """).first()
            return inserted != nil
        }
    }
}

extension SQLMetadataStore {
    public func pipelineSummaries(workspace: String) async throws -> [PipelineSummary] {
        try await read { db in
            let counts = try await db.raw("""
                SELECT v.name, COUNT(*) AS versions, (SELECT COUNT(*) FROM pipeline_runs r WHERE r.workspace = v.workspace AND r.pipeline = v.name) AS runs
                FROM pipeline_versions v WHERE v.workspace = \(bind: workspace) GROUP BY v.workspace, v.name ORDER BY v.name
                """).all()
            var out: [PipelineSummary] = []
            for row in counts {
                let name = try row.string("name")
                let last = try await db.raw("""
                    SELECT * FROM pipeline_runs WHERE workspace = \(bind: workspace) AND pipeline = \(bind: name) ORDER BY start_time DESC, run_id DESC LIMIT 1
                    """).first().map(Self.pipelineRun)
                out.append(PipelineSummary(name: name, versions: try row.int64("versions"), runs: try row.int64("runs"), lastRun: last))
            }
            return out
        }
    }
}

extension SQLMetadataStore {
    public func readyStep(pipelineRunID: String, step: String, invocation: String, cacheKey: String?, notBefore: Millis?) async throws -> Bool {
        try await write("ready_step", "step_run", "\(pipelineRunID)/\(step)") { db in
            try await db.raw("""
                UPDATE step_runs SET state = 'ready', invocation_json = \(bind: invocation), cache_key = COALESCE(\(bind: cacheKey), cache_key),
                  lease_owner = NULL, lease_expiry = \(bind: notBefore)
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step) AND state = 'pending'
                """).run()
            let row = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            return row?.state == .ready && row?.invocation == invocation
        }
    }

    public func requeueStep(pipelineRunID: String, step: String, owner: String, notBefore: Millis, message: String?) async throws -> Bool {
        try await write("requeue_step", "step_run", "\(pipelineRunID)/\(step)", detail: owner) { db in
            let before = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step)")
                .first().map(Self.stepRun)
            guard let before, before.state == .running, before.leaseOwner == owner, before.invocation != nil else { return false }
            try await db.raw("""
                UPDATE step_runs SET state = 'ready', lease_owner = NULL, lease_expiry = \(bind: notBefore), message = \(bind: message)
                WHERE pipeline_run_id = \(bind: pipelineRunID) AND step = \(bind: step) AND state = 'running' AND lease_owner = \(bind: owner)
                """).run()
            return true
        }
    }

    public func leaseReadyStep(owner: String, until: Millis, now: Millis) async throws -> StepRun? {
        let engine = self.engine
        return try await write("lease_ready_step", "step_run", entityIDFrom: { (r: StepRun?) in r.map { "\($0.pipelineRunID)/\($0.step)" } ?? "-" }, detail: owner) { db in
            let waiting: SQLQueryString = """
                (state = 'ready' AND (lease_expiry IS NULL OR lease_expiry <= \(bind: now)))
                OR (state = 'running' AND invocation_json IS NOT NULL AND lease_expiry < \(bind: now))
                """
            // First in, first out across runs: by the run's start, then the step's.
            let fifo: SQLQueryString = """
                ORDER BY (SELECT p.start_time FROM pipeline_runs p WHERE p.run_id = s.pipeline_run_id), COALESCE(s.start_time, 0), s.pipeline_run_id, s.step
                LIMIT 1
                """
            // The oldest waiting step, skipping rows another transaction holds (PostgreSQL), so
            // racing workers each get their own; SQLite runs one writer at a time.
            let pick: SQLQueryString = engine == .postgresql
                ? "SELECT pipeline_run_id, step FROM step_runs s WHERE \(waiting) \(fifo) FOR UPDATE SKIP LOCKED"
                : "SELECT pipeline_run_id, step FROM step_runs s WHERE \(waiting) \(fifo)"
            guard let row = try await db.raw(pick).first() else { return nil }
            let run = try row.string("pipeline_run_id")
            let step = try row.string("step")
            try await db.raw("""
                UPDATE step_runs SET state = 'running', attempts = attempts + 1, lease_owner = \(bind: owner), lease_expiry = \(bind: until),
                  start_time = COALESCE(start_time, \(bind: now))
                WHERE pipeline_run_id = \(bind: run) AND step = \(bind: step) AND (\(waiting))
                """).run()
            let leased = try await db.raw("SELECT * FROM step_runs WHERE pipeline_run_id = \(bind: run) AND step = \(bind: step)").first().map(Self.stepRun)
            return leased?.state == .running && leased?.leaseOwner == owner && leased?.leaseExpiry == until ? leased : nil
        }
    }
}
