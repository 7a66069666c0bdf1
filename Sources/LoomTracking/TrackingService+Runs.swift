import LoomCore
import LoomStore

extension TrackingService {
    public func createRun(experimentID: String?, userID: String?, startTime: Millis?, runName: String?, tags: [Tag]) async throws -> Run {
        let eid = experimentID.flatMap { $0.isEmpty ? nil : $0 } ?? "0"
        let tags = try tags.enumerated().map { (i, t) throws(LoomError) in try Validate.runTag(t, path: "tags[\(i)]") }
        let experiment = try await experiment(id: eid)
        guard experiment.lifecycleStage == .active else {
            throw LoomError.invalidParameter("The experiment \(eid) must be in the 'active' state. Current state is deleted.")
        }
        let tagName = tags.last(where: { $0.key == "mlflow.runName" })?.value
        if let runName, let tagName, !runName.isEmpty, runName != tagName {
            throw LoomError.invalidParameter("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='\(runName)', mlflow.runName='\(tagName)').")
        }
        let name = (runName?.isEmpty == false ? runName : nil) ?? tagName ?? Identifiers.randomRunName()
        var allTags = tags.filter { $0.key != "mlflow.runName" }
        allTags.append(Tag(key: "mlflow.runName", value: name))
        let user = userID ?? tags.last(where: { $0.key == "mlflow.user" })?.value ?? ""
        let runID = Identifiers.newHexID()
        let artifactURI = "\(experiment.artifactLocation)/\(runID)/artifacts"
        return try await store.createRun(
            NewRun(runID: runID, experimentID: eid, runName: name, userID: user, startTime: startTime ?? now, tags: allTags),
            artifactURI: artifactURI)
    }

    public func run(id: String) async throws -> Run {
        guard let run = try await store.run(id: id) else { throw LoomError.notFound("Run with id=\(id) not found") }
        return run
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Millis?, runName: String?) async throws -> RunInfo {
        try await store.updateRun(id: id, status: status, endTime: endTime, runName: runName)
    }

    public func deleteRun(id: String) async throws {
        try await store.setRunLifecycle(id: id, stage: .deleted, time: now)
    }

    public func restoreRun(id: String) async throws {
        try await store.setRunLifecycle(id: id, stage: .active, time: now)
    }

    public func logBatch(runID: String, metrics: [Metric], params: [Param], tags: [Tag]) async throws {
        try Validate.batchLimits(metrics: metrics.count, params: params.count, tags: tags.count)
        for (i, m) in metrics.enumerated() { try Validate.metric(m, path: "metrics[\(i)]") }
        let params = try params.enumerated().map { (i, p) throws(LoomError) in try Validate.param(p, path: "params[\(i)]") }
        let tags = try tags.enumerated().map { (i, t) throws(LoomError) in try Validate.runTag(t, path: "tags[\(i)]") }
        guard !(metrics.isEmpty && params.isEmpty && tags.isEmpty) else {
            // MLflow accepts an empty batch for an existing run.
            _ = try await run(id: runID)
            return
        }
        try await store.logBatch(runID: runID, metrics: metrics, params: params, tags: tags)
    }

    public func logMetric(runID: String, metric: Metric) async throws {
        try Validate.metric(metric)
        try await store.logBatch(runID: runID, metrics: [metric], params: [], tags: [])
    }

    public func logParam(runID: String, key: String, value: String) async throws {
        let p = try Validate.param(Param(key: key, value: value))
        try await store.logBatch(runID: runID, metrics: [], params: [p], tags: [])
    }

    public func setTag(runID: String, key: String, value: String) async throws {
        let t = try Validate.runTag(Tag(key: key, value: value))
        try await store.logBatch(runID: runID, metrics: [], params: [], tags: [t])
    }

    public func deleteTag(runID: String, key: String) async throws {
        try await store.deleteRunTag(runID: runID, key: key)
    }

    public func logInputs(runID: String, datasets: [DatasetInput], models: [ModelIO]) async throws {
        for input in datasets {
            let d = input.dataset
            guard !d.name.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'datasets[].dataset.name'.") }
            guard !d.digest.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'datasets[].dataset.digest'.") }
            try Validate.length(d.name, path: "name", limit: Limits.maxDatasetNameLength)
            try Validate.length(d.digest, path: "digest", limit: Limits.maxDatasetDigestLength)
            try Validate.length(d.schema, path: "schema", limit: Limits.maxDatasetSchemaLength)
            try Validate.length(d.source, path: "source", limit: Limits.maxDatasetSourceLength)
            try Validate.length(d.profile, path: "profile", limit: Limits.maxDatasetProfileLength)
            for t in input.tags {
                try Validate.length(t.key, path: "key", limit: Limits.maxInputTagKeyLength)
                try Validate.length(t.value, path: "value", limit: Limits.maxInputTagValueLength)
            }
        }
        let info = try await run(id: runID).info
        try await store.logInputs(runID: runID, experimentID: info.experimentID, datasets: datasets, models: models)
    }

    public func logOutputs(runID: String, models: [ModelIO]) async throws {
        try await store.logOutputs(runID: runID, models: models)
    }

    public func metricHistory(runID: String, key: String, maxResults: Int?, pageToken: String?) async throws -> Page<Metric> {
        let limit = try Self.pageSize(maxResults, default: Limits.maxMetricHistoryPage, max: Limits.maxMetricHistoryPage)
        return try await store.metricHistory(runID: runID, key: key, maxResults: limit, offset: try PageToken.decode(pageToken))
    }

    public func metricHistoryBulkInterval(runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxResults: Int?) async throws -> [Metric] {
        guard !runIDs.isEmpty else { throw LoomError.invalidParameter("GetMetricHistoryBulkInterval request must specify at least one run_id.") }
        guard runIDs.count <= 100 else { throw LoomError.invalidParameter("GetMetricHistoryBulkInterval request cannot specify more than 100 run_ids. Received 101 run_ids.") }
        if let s = startStep, let e = endStep, s > e {
            throw LoomError.invalidParameter("end_step must be greater than start_step. Found start_step=\(s) and end_step=\(e).")
        }
        if (startStep == nil) != (endStep == nil) {
            throw LoomError.invalidParameter("If either start step or end step are specified, both must be specified.")
        }
        let limit = try Self.pageSize(maxResults, default: 320, max: 2500)
        return try await store.metricHistoryBulkInterval(MetricIntervalQuery(runIDs: runIDs, key: key, startStep: startStep, endStep: endStep, maxResults: limit))
    }

    public func searchRuns(experimentIDs: [String], filter: String?, viewType: ViewType, maxResults: Int?, orderBy: [String], pageToken: String?) async throws -> Page<Run> {
        let clauses = try SearchFilterParser.parse(filter, grammar: .runs)
        let orders = try orderBy.map { term throws(LoomError) in try SearchFilterParser.parseOrder(term, grammar: .runs) }
        let limit = try Self.pageSize(maxResults, default: 1000, max: Limits.maxRunsPerSearch)
        let offset = try PageToken.decode(pageToken)
        return try await store.searchRuns(RunSearch(experimentIDs: experimentIDs, filter: clauses, orderBy: orders, viewType: viewType, maxResults: limit, offset: offset))
    }
}
