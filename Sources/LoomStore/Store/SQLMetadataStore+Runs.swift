import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createRun(_ new: NewRun, artifactURI: String) async throws -> Run {
        guard let eid = parseID(new.experimentID) else { throw LoomError.notFound("No Experiment with id=\(new.experimentID) exists") }
        return try await write("create_run", "run", new.runID, validatesFirst: true) { db in
            try await Self.requireActiveExperiment(db, eid, new.experimentID)
            try await db.raw("""
                INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, deleted_time, artifact_uri, lifecycle_stage)
                VALUES (\(bind: new.runID), \(bind: eid), \(bind: new.runName), \(bind: new.userID), 'RUNNING', \(bind: new.startTime), NULL, NULL, \(bind: artifactURI), 'active')
                """).run()
            try await Self.upsertTags(db, table: "tags", owner: "run_uuid", id: new.runID, tags: new.tags)
            let info = RunInfo(runID: new.runID, runName: new.runName, experimentID: new.experimentID, userID: new.userID, status: .running,
                               startTime: new.startTime, endTime: nil, artifactURI: artifactURI, lifecycleStage: .active)
            return Run(info: info, tags: Self.dedupeLast(new.tags))
        }
    }

    public func runInfo(id: String) async throws -> RunInfo? {
        try await read { db in
            try await db.raw("SELECT * FROM runs WHERE run_uuid = \(bind: id)").first().map(Self.decodeRunInfo)
        }
    }

    public func run(id: String) async throws -> Run? {
        try await read { db in
            guard let row = try await db.raw("SELECT * FROM runs WHERE run_uuid = \(bind: id)").first() else { return nil }
            return try await Self.loadRuns(db, infos: [Self.decodeRunInfo(row)]).first
        }
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Millis?, runName: String?) async throws -> RunInfo {
        try await write("update_run", "run", id) { db in
            var info = try await Self.requireActiveRun(db, id)
            if let status { info.status = status }
            if let endTime { info.endTime = endTime }
            if let runName, !runName.isEmpty {
                info.runName = runName
                try await Self.upsertTags(db, table: "tags", owner: "run_uuid", id: id, tags: [Tag(key: "mlflow.runName", value: runName)])
            }
            try await db.raw("UPDATE runs SET status = \(bind: info.status.rawValue), end_time = \(bind: info.endTime), name = \(bind: info.runName) WHERE run_uuid = \(bind: id)").run()
            return info
        }
    }

    public func setRunLifecycle(id: String, stage: LifecycleStage, time: Millis) async throws {
        try await write(stage == .deleted ? "delete_run" : "restore_run", "run", id) { db in
            guard let row = try await db.raw("SELECT lifecycle_stage FROM runs WHERE run_uuid = \(bind: id)").first() else {
                throw LoomError.notFound("Run with id=\(id) not found")
            }
            _ = row
            if stage == .deleted {
                try await db.raw("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = \(bind: time) WHERE run_uuid = \(bind: id)").run()
            } else {
                try await db.raw("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = \(bind: id)").run()
            }
        }
    }

    public func logBatch(runID: String, metrics: [Metric], params: [Param], tags: [Tag]) async throws {
        let detail = "metrics=\(metrics.count) params=\(params.count) tags=\(tags.count)"
        let action = metrics.count == 1 && params.isEmpty && tags.isEmpty ? "log_metric"
            : params.count == 1 && metrics.isEmpty && tags.isEmpty ? "log_param"
            : tags.count == 1 && metrics.isEmpty && params.isEmpty ? "set_tag" : "log_batch"
        try await write(action, "run", runID, detail: detail, validatesFirst: true) { db in
            try await Self.ensureActiveRun(db, runID)
            if !params.isEmpty { try await Self.insertParams(db, table: "params", owner: "run_uuid", id: runID, params: params) }
            if !tags.isEmpty {
                try await Self.upsertTags(db, table: "tags", owner: "run_uuid", id: runID, tags: tags)
                if let name = tags.last(where: { $0.key == "mlflow.runName" })?.value {
                    try await db.raw("UPDATE runs SET name = \(bind: name) WHERE run_uuid = \(bind: runID)").run()
                }
            }
            if !metrics.isEmpty { try await Self.insertMetrics(db, runID: runID, metrics: metrics) }
        }
    }

    public func deleteRunTag(runID: String, key: String) async throws {
        try await write("delete_tag", "run", runID, detail: key) { db in
            _ = try await Self.requireActiveRun(db, runID)
            let gone = try await db.raw("DELETE FROM tags WHERE run_uuid = \(bind: runID) AND key = \(bind: key) RETURNING key").all()
            guard !gone.isEmpty else { throw LoomError.notFound("No tag with name: \(key) in run with id \(runID)") }
        }
    }

    public func logInputs(runID: String, experimentID: String, datasets: [DatasetInput], models: [ModelIO]) async throws {
        guard let eid = parseID(experimentID) else { throw LoomError.notFound("No Experiment with id=\(experimentID) exists") }
        let actor = AuditContext.current.actor
        let engine = self.engine
        try await write("log_inputs", "run", runID, detail: "datasets=\(datasets.count) models=\(models.count)") { db in
            _ = try await Self.requireActiveRun(db, runID)
            let workspace = datasets.isEmpty ? Workspace.defaultName
                : try await db.raw("SELECT workspace FROM experiments WHERE experiment_id = \(bind: eid)").first()?.string("workspace") ?? Workspace.defaultName
            for input in datasets {
                let d = input.dataset
                try await Self.ensureLoggedDatasetVersion(db, d, workspace: workspace, actor: actor, engine: engine)
                let existing = try await db.raw("SELECT dataset_uuid FROM datasets WHERE experiment_id = \(bind: eid) AND name = \(bind: d.name) AND digest = \(bind: d.digest)").first()
                let uuid: String
                if let existing {
                    uuid = try existing.string("dataset_uuid")
                } else {
                    uuid = Identifiers.newHexID()
                    try await db.raw("""
                        INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema_json, profile_json)
                        VALUES (\(bind: uuid), \(bind: eid), \(bind: d.name), \(bind: d.digest), \(bind: d.sourceType), \(bind: d.source), \(bind: d.schema), \(bind: d.profile))
                        """).run()
                }
                let position = Clock.nowMillis()
                try await db.raw("""
                    INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, position) VALUES (\(bind: runID), \(bind: uuid), \(bind: position))
                    ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING
                    """).run()
                for tag in input.tags {
                    try await db.raw("""
                        INSERT INTO run_dataset_input_tags (run_uuid, dataset_uuid, key, value) VALUES (\(bind: runID), \(bind: uuid), \(bind: tag.key), \(bind: tag.value))
                        ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value
                        """).run()
                }
            }
            for m in models {
                try await db.raw("""
                    INSERT INTO run_model_io (run_uuid, model_id, direction, step) VALUES (\(bind: runID), \(bind: m.modelID), 'input', \(bind: m.step))
                    ON CONFLICT (run_uuid, model_id, direction) DO NOTHING
                    """).run()
            }
        }
    }

    /// A dataset logged by an MLflow run is a dataset version too (format `mlflow`), numbered
    /// after the name's newest, unless the name has one with its digest already.
    static func ensureLoggedDatasetVersion(_ db: any SQLDatabase, _ d: Dataset, workspace: String, actor: String, engine: SQLEngine) async throws {
        guard (try? Validate.datasetName(d.name)) != nil else { return }
        if try await datasetVersion(db, workspace: workspace, name: d.name, digest: d.digest) != nil { return }
        // A Loom version logged by a run carries its digest shortened (DatasetVersion.loggedDigest).
        if d.digest.count == 32, d.digest.allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
            try await db.raw("SELECT 1 AS one FROM dataset_versions WHERE workspace = \(bind: workspace) AND name = \(bind: d.name) AND digest LIKE \(bind: "sha256:" + d.digest + "%")").first() != nil {
            return
        }
        _ = try await insertDatasetVersion(db, DatasetVersion(
            name: d.name, workspace: workspace, digest: d.digest, format: "mlflow", sourceType: d.sourceType, source: d.source,
            rowCount: mlflowRowCount(d.profile), schema: d.schema, profile: d.profile, createdBy: actor, creationTime: Clock.nowMillis()),
            engine: engine)
    }

    /// `num_rows` of an MLflow dataset profile (`{"num_rows": 100, "num_elements": 400}`).
    static func mlflowRowCount(_ profile: String?) -> Int64? {
        guard let profile, let data = profile.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["num_rows"] as? NSNumber)?.int64Value
    }

    public func logOutputs(runID: String, models: [ModelIO]) async throws {
        try await write("log_outputs", "run", runID, detail: "models=\(models.count)") { db in
            _ = try await Self.requireActiveRun(db, runID)
            for m in models {
                try await db.raw("""
                    INSERT INTO run_model_io (run_uuid, model_id, direction, step) VALUES (\(bind: runID), \(bind: m.modelID), 'output', \(bind: m.step ?? 0))
                    ON CONFLICT (run_uuid, model_id, direction) DO UPDATE SET step = excluded.step
                    """).run()
            }
        }
    }

    public func metricHistory(runID: String, key: String, maxResults: Int, offset: Int) async throws -> Page<Metric> {
        try await read { db in
            let packed = try Self.packedPoints(db, runID: runID, key: key, steps: nil)
            guard !packed.isEmpty else {
                let rows = try await db.raw("""
                    \(Self.pointsOf(runID: runID, key: key, steps: nil))
                    LIMIT \(bind: maxResults + 1) OFFSET \(bind: offset)
                    """).all()
                let items = try rows.prefix(maxResults).map { try Self.decodeMetric($0, runID: nil) }
                return Page(items: items, nextPageToken: rows.count > maxResults ? PageToken.encode(offset: offset + maxResults) : nil)
            }
            let rows = try await db.raw(Self.pointsOf(runID: runID, key: key, steps: nil)).all()
            let end = offset > Int.max - maxResults ? Int.max : offset + maxResults
            let (items, total) = Self.mergeHistory(
                try rows.map { try Self.decodeMetric($0, runID: nil) }, packed, key: key, runID: nil, range: offset..<end)
            return Page(items: items, nextPageToken: total > end ? PageToken.encode(offset: end) : nil)
        }
    }

    public func metricHistoryBulkInterval(_ q: MetricIntervalQuery) async throws -> [Metric] {
        try await read { db in
            var out: [Metric] = []
            for runID in q.runIDs {
                let steps = (q.startStep, q.endStep)
                let rows = try await db.raw(Self.pointsOf(runID: runID, key: q.key, steps: steps)).all()
                var metrics = try rows.map { try Self.decodeMetric($0, runID: runID) }
                let packed = try Self.packedPoints(db, runID: runID, key: q.key, steps: steps)
                if !packed.isEmpty {
                    metrics = Self.mergeHistory(metrics, packed, key: q.key, runID: runID).items
                }
                out.append(contentsOf: Downsampling.evenlyByStep(metrics, maxResults: q.maxResults))
            }
            return out
        }
    }

    /// The points of one run and key in `metrics`, in step order (read in index order, without
    /// a sort). On SQLite, `packedPoints` has the others.
    static func pointsOf(runID: String, key: String, steps: (start: Int64?, end: Int64?)?) -> SQLQueryString {
        var conds: [SQLQueryString] = ["run_uuid = \(bind: runID)", "key = \(bind: key)"]
        if let s = steps?.start { conds.append("step >= \(bind: s)") }
        if let e = steps?.end { conds.append("step <= \(bind: e)") }
        return """
            SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics
            WHERE \(conds.joined(separator: " AND "))
            ORDER BY step, timestamp, value, is_nan
            """
    }

    public func metricKeys(experimentIDs: [String]) async throws -> [String] {
        let ids = experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        guard !ids.isEmpty else { return [] }
        return try await read { db in
            try await db.raw("""
                SELECT DISTINCT m.key FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid
                WHERE r.experiment_id IN (\(binds: ids)) ORDER BY m.key LIMIT 500
                """).all().map { try $0.string("key") }
        }
    }

    public func paramKeys(experimentIDs: [String]) async throws -> [String] {
        let ids = experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        guard !ids.isEmpty else { return [] }
        return try await read { db in
            try await db.raw("""
                SELECT DISTINCT p.key FROM params p JOIN runs r ON r.run_uuid = p.run_uuid
                WHERE r.experiment_id IN (\(binds: ids)) ORDER BY p.key LIMIT 500
                """).all().map { try $0.string("key") }
        }
    }

    public func countRuns(experimentIDs: [String], viewType: ViewType) async throws -> Int {
        let ids = experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        guard !ids.isEmpty else { return 0 }
        let stages = viewType.stages.map(\.rawValue) as [any Encodable & Sendable]
        return try await read { db in
            let row = try await db.raw("SELECT COUNT(*) AS n FROM runs WHERE experiment_id IN (\(binds: ids)) AND lifecycle_stage IN (\(binds: stages))").first()
            return Int(try row?.int64("n") ?? 0)
        }
    }

    public func searchDatasets(experimentIDs: [String]) async throws -> [Dataset] {
        let ids = experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        guard !ids.isEmpty else { return [] }
        return try await read { db in
            try await db.raw("SELECT * FROM datasets WHERE experiment_id IN (\(binds: ids)) ORDER BY name, digest LIMIT 1000").all().map(Self.decodeDataset)
        }
    }

    // MARK: Helpers

    /// `requireActiveRun` for writes that need only the check (one column instead of the row).
    static func ensureActiveRun(_ db: any SQLDatabase, _ runID: String) async throws {
        // Within a write batch, a run found active by an earlier write of the batch still is
        // (see `ActiveRunMemo`).
        let memo = ActiveRunMemo.current
        if let memo, memo.contains(runID) { return }
        let sql = "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?"
        if let sqlite = db as? DirectSQLiteDatabase {
            // Every metric write asks: read the one text column straight off the handle.
            var stage: String?
            try sqlite.handle.run(sql, [.text(runID)]) { row in
                if case .text(let s) = row.values[0] { stage = s }
            }
            try checkActive(runID, stage)
        } else {
            let row = try await db.rows(template: sql, [runID]).first
            try checkActive(runID, row.map { try $0.decode(column: "lifecycle_stage", as: String.self) })
        }
        memo?.insert(runID)
    }

    static func requireActiveRun(_ db: any SQLDatabase, _ runID: String) async throws -> RunInfo {
        let info = try await db.rows(template: "SELECT * FROM runs WHERE run_uuid = ?", [runID]).first.map(decodeRunInfo)
        try checkActive(runID, info?.lifecycleStage.rawValue)
        return info!
    }

    /// MLflow's errors for a run that is missing (`stage` nil) or not active.
    private static func checkActive(_ runID: String, _ stage: String?) throws(LoomError) {
        guard let stage else { throw .notFound("Run with id=\(runID) not found") }
        guard stage == LifecycleStage.active.rawValue else {
            throw .invalidParameter("The run \(runID) must be in the 'active' state. Current state is deleted.")
        }
    }

    /// Upserts tags; the last value of a key repeated in `tags` wins.
    static func upsertTags(_ db: any SQLDatabase, table: String, owner: String, id: String, tags: [Tag]) async throws {
        let unique = dedupeLast(tags)
        for chunk in unique.chunked(300) {
            let values: [SQLQueryString] = chunk.map { "(\(bind: id), \(bind: $0.key), \(bind: $0.value))" }
            try await db.raw("""
                INSERT INTO \(unsafeRaw: table) (\(unsafeRaw: owner), key, value) VALUES \(values.joined(separator: ", "))
                ON CONFLICT (\(unsafeRaw: owner), key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    static func dedupeLast(_ tags: [Tag]) -> [Tag] {
        var seen: [String: Int] = [:]
        var out: [Tag] = []
        for t in tags {
            if let i = seen[t.key] { out[i] = t } else { seen[t.key] = out.count; out.append(t) }
        }
        return out
    }

    /// Inserts params; re-logging the same value is a no-op, a different value is an error.
    static func insertParams(_ db: any SQLDatabase, table: String, owner: String, id: String, params: [Param]) async throws {
        var wanted: [String: String] = [:]
        for p in params {
            if let v = wanted[p.key], v != p.value {
                throw LoomError.invalidParameter("Duplicate parameter keys have been submitted: [\(p.key)]. Please ensure the request contains only one param value per param key.")
            }
            wanted[p.key] = p.value
        }
        let keys = Array(wanted.keys)
        var existing: [String: String] = [:]
        for chunk in keys.chunked(500) {
            let binds = Array(chunk) as [any Encodable & Sendable]
            let rows = try await db.raw("SELECT key, value FROM \(unsafeRaw: table) WHERE \(unsafeRaw: owner) = \(bind: id) AND key IN (\(binds: binds))").all()
            for r in rows { existing[try r.string("key")] = try r.string("value") }
        }
        let conflicts = existing.filter { wanted[$0.key] != $0.value }
        if !conflicts.isEmpty {
            if params.count == 1, let (k, old) = conflicts.first {
                throw LoomError.invalidParameter("Changing param values is not allowed. Param with key='\(k)' was already logged with value='\(old)' for run ID='\(id)'. Attempted logging new value '\(wanted[k]!)'.")
            }
            let detail = conflicts.keys.sorted().map { "{'key': '\($0)', 'old_value': '\(existing[$0]!)', 'new_value': '\(wanted[$0]!)'}" }.joined(separator: ", ")
            throw LoomError.invalidParameter("Changing param values is not allowed. Params were already logged='[\(detail)]' for run ID='\(id)'.")
        }
        let fresh = params.filter { existing[$0.key] == nil }
        var inserted = Set<String>()
        let rows = fresh.filter { inserted.insert($0.key).inserted }
        for chunk in rows.chunked(300) {
            let values: [SQLQueryString] = chunk.map { "(\(bind: id), \(bind: $0.key), \(bind: $0.value))" }
            try await db.raw("INSERT INTO \(unsafeRaw: table) (\(unsafeRaw: owner), key, value) VALUES \(values.joined(separator: ", "))").run()
        }
    }

    static func insertMetrics(_ db: any SQLDatabase, runID: String, metrics: [Metric]) async throws {
        if let sqlite = db as? DirectSQLiteDatabase {
            // Plain points of a small write inside a write batch go to the append-only log (see
            // `mergeMetricLog`): the batch writes them, with those of its other writes, as one
            // packed row per run, so a commit adds a page or two to the write-ahead log and
            // makes one insert instead of one per point. Large writes and points that name a
            // model or dataset go straight to `metrics`, one prepared one-row INSERT per point
            // with values bound as they are (about 4 µs less per point than a multi-row one).
            if let pending = PendingMetricWrites.current, metrics.count <= Self.metricLogWriteLimit, metrics.allSatisfy(\.isPlain) {
                return pending.offer(runID: runID, points: metrics, log: true)
            }
            try sqlite.handle.runEach("""
                INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_uuid, key, step, timestamp, value, is_nan) DO NOTHING
                """, metrics) { m, b in
                bindPoint(m, runID, &b)
                b.bind(m.modelID)
                b.bind(m.datasetName)
                b.bind(m.datasetDigest)
            }
        } else {
            for chunk in metrics.chunked(250) {
                var binds: [any Encodable & Sendable] = []
                binds.reserveCapacity(chunk.count * 9)
                for m in chunk {
                    appendPoint(m, runID, to: &binds)
                    binds.append(m.modelID)
                    binds.append(m.datasetName)
                    binds.append(m.datasetDigest)
                }
                try await db.run(template: """
                    INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)
                    VALUES \(placeholderRows(chunk.count, 9))
                    ON CONFLICT (run_uuid, key, step, timestamp, value, is_nan) DO NOTHING
                    """, binds)
            }
        }
        if let pending = PendingMetricWrites.current {
            // Inside a write batch: the batch upserts the newest point per run and key once,
            // before it commits (see `WriteBatcher`).
            return pending.offer(runID: runID, points: metrics, log: false)
        }
        // The newest point per key: greatest (step, timestamp, value).
        var latest: [String: Metric] = [:]
        for m in metrics {
            if let cur = latest[m.key], !Self.isNewer(m, than: cur) { continue }
            latest[m.key] = m
        }
        try await upsertLatestMetrics(db, latest.values.map { (runID, $0) })
    }

    /// Writes with more points than this go straight to `metrics`: they fill pages by themselves.
    static let metricLogWriteLimit = 100
    /// The writer merges the log into `metric_blocks` once it holds about this many points
    /// (see `mergeMetricLog`).
    static let metricLogMergePoints = 2048

    /// Whether `m` replaces `cur` as the latest point of its key: greater step, then timestamp,
    /// then value (NaN lowest).
    static func isNewer(_ m: Metric, than cur: Metric) -> Bool {
        if (m.step, m.timestamp) != (cur.step, cur.timestamp) { return (m.step, m.timestamp) > (cur.step, cur.timestamp) }
        return metricValueRank(m.value) > metricValueRank(cur.value)
    }

    /// Keeps `latest_metrics` at the greatest (step, timestamp, value) per run and key. `points`
    /// holds at most one point per run and key.
    static func upsertLatestMetrics(_ db: any SQLDatabase, _ points: [(runID: String, metric: Metric)]) async throws {
        let upsert = """
            ON CONFLICT (run_uuid, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan
            WHERE excluded.step > latest_metrics.step
               OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
               OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp AND excluded.value > latest_metrics.value)
            """
        if let sqlite = db as? DirectSQLiteDatabase {
            // A prepared one-row statement with typed binds, as for the points themselves.
            try sqlite.handle.runEach("""
                INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES (?, ?, ?, ?, ?, ?)
                \(upsert)
                """, points) { p, b in bindPoint(p.metric, p.runID, &b) }
            return
        }
        for chunk in points.chunked(250) {
            var binds: [any Encodable & Sendable] = []
            binds.reserveCapacity(chunk.count * 6)
            for (runID, m) in chunk { appendPoint(m, runID, to: &binds) }
            try await db.run(template: """
                INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES \(placeholderRows(chunk.count, 6))
                \(upsert)
                """, binds)
        }
    }

    /// Binds `run_uuid, key, step, timestamp, value, is_nan` of one point.
    private static func bindPoint(_ m: Metric, _ runID: String, _ b: inout SQLiteBinder) {
        let (value, isNaN) = storedValue(m.value)
        b.bind(runID)
        b.bind(m.key)
        b.bind(m.step)
        b.bind(m.timestamp)
        b.bind(value)
        b.bind(isNaN)
    }

    /// `run_uuid, key, step, timestamp, value, is_nan` of one point.
    private static func appendPoint(_ m: Metric, _ runID: String, to binds: inout [any Encodable & Sendable]) {
        let (value, isNaN) = storedValue(m.value)
        binds.append(runID)
        binds.append(m.key)
        binds.append(m.step)
        binds.append(m.timestamp)
        binds.append(value)
        binds.append(isNaN)
    }

    /// A metric value as stored: NaN as value 0 with `is_nan` set, ±Infinity clamped.
    static func storedValue(_ v: Double) -> (value: Double, isNaN: Int64) {
        v.isNaN ? (0, 1) : (clamp(v), 0)
    }

    static func metricValueRank(_ v: Double) -> Double { v.isNaN ? -.infinity : v }

    /// ±Infinity is stored as ±Double.greatestFiniteMagnitude, as MLflow's SQL store does.
    static func clamp(_ v: Double) -> Double {
        v == .infinity ? .greatestFiniteMagnitude : v == -.infinity ? -.greatestFiniteMagnitude : v
    }

    static func decodeRunInfo(_ row: any SQLRow) throws -> RunInfo {
        RunInfo(
            runID: try row.string("run_uuid"),
            runName: try row.string("name"),
            experimentID: String(try row.int64("experiment_id")),
            userID: try row.string("user_id"),
            status: RunStatus(rawValue: try row.string("status")) ?? .running,
            startTime: try row.int64("start_time"),
            endTime: try row.optionalInt64("end_time"),
            artifactURI: try row.string("artifact_uri"),
            lifecycleStage: LifecycleStage(rawValue: try row.string("lifecycle_stage")) ?? .active)
    }

    static func decodeMetric(_ row: any SQLRow, runID: String?) throws -> Metric {
        let isNaN = try row.int64("is_nan") != 0
        return Metric(
            key: try row.string("key"),
            value: isNaN ? .nan : (try row.optionalDouble("value") ?? .nan),
            timestamp: try row.int64("timestamp"),
            step: try row.int64("step"),
            modelID: try row.optionalString("model_id"),
            datasetName: try row.optionalString("dataset_name"),
            datasetDigest: try row.optionalString("dataset_digest"),
            runID: runID)
    }

    static func decodeDataset(_ row: any SQLRow) throws -> Dataset {
        Dataset(
            name: try row.string("name"), digest: try row.string("digest"), sourceType: try row.string("source_type"),
            source: try row.string("source"), schema: try row.optionalString("schema_json"), profile: try row.optionalString("profile_json"))
    }

    /// Loads params, tags, latest metrics, inputs and outputs for a page of runs, preserving order.
    static func loadRuns(_ db: any SQLDatabase, infos: [RunInfo]) async throws -> [Run] {
        guard !infos.isEmpty else { return [] }
        var params: [String: [Param]] = [:]
        var tags: [String: [Tag]] = [:]
        var metrics: [String: [Metric]] = [:]
        var datasets: [String: [DatasetInput]] = [:]
        var modelInputs: [String: [ModelIO]] = [:]
        var modelOutputs: [String: [ModelIO]] = [:]
        for chunk in infos.map(\.runID).chunked(500) {
            let ids = Array(chunk) as [any Encodable & Sendable]
            for r in try await db.raw("SELECT run_uuid, key, value FROM params WHERE run_uuid IN (\(binds: ids))").all() {
                params[try r.string("run_uuid"), default: []].append(Param(key: try r.string("key"), value: try r.string("value")))
            }
            for r in try await db.raw("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN (\(binds: ids))").all() {
                tags[try r.string("run_uuid"), default: []].append(Tag(key: try r.string("key"), value: try r.string("value")))
            }
            for r in try await db.raw("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN (\(binds: ids))").all() {
                let isNaN = try r.int64("is_nan") != 0
                metrics[try r.string("run_uuid"), default: []].append(Metric(
                    key: try r.string("key"), value: isNaN ? .nan : (try r.optionalDouble("value") ?? .nan),
                    timestamp: try r.int64("timestamp"), step: try r.int64("step")))
            }
            let inputRows = try await db.raw("""
                SELECT i.run_uuid, i.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema_json, d.profile_json
                FROM run_dataset_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
                WHERE i.run_uuid IN (\(binds: ids)) ORDER BY i.position
                """).all()
            if !inputRows.isEmpty {
                var inputTags: [String: [Tag]] = [:]
                for r in try await db.raw("SELECT run_uuid, dataset_uuid, key, value FROM run_dataset_input_tags WHERE run_uuid IN (\(binds: ids))").all() {
                    inputTags[try r.string("run_uuid") + "/" + r.string("dataset_uuid"), default: []].append(Tag(key: try r.string("key"), value: try r.string("value")))
                }
                for r in inputRows {
                    let run = try r.string("run_uuid")
                    let key = run + "/" + (try r.string("dataset_uuid"))
                    datasets[run, default: []].append(DatasetInput(tags: inputTags[key] ?? [], dataset: try decodeDataset(r)))
                }
            }
            for r in try await db.raw("SELECT run_uuid, model_id, direction, step FROM run_model_io WHERE run_uuid IN (\(binds: ids))").all() {
                let io = ModelIO(modelID: try r.string("model_id"), step: try r.optionalInt64("step"))
                if try r.string("direction") == "input" {
                    modelInputs[try r.string("run_uuid"), default: []].append(io)
                } else {
                    modelOutputs[try r.string("run_uuid"), default: []].append(io)
                }
            }
        }
        return infos.map { info in
            Run(info: info,
                metrics: (metrics[info.runID] ?? []).sorted { $0.key < $1.key },
                params: (params[info.runID] ?? []).sorted { $0.key < $1.key },
                tags: (tags[info.runID] ?? []).sorted { $0.key < $1.key },
                datasetInputs: datasets[info.runID] ?? [],
                modelInputs: modelInputs[info.runID] ?? [],
                modelOutputs: modelOutputs[info.runID] ?? [])
        }
    }
}

private extension Metric {
    /// Names no logged model and no dataset.
    var isPlain: Bool { modelID == nil && datasetName == nil && datasetDigest == nil }
}
