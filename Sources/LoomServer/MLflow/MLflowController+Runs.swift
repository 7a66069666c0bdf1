import Hummingbird
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking

extension MLflowController {
    func addRunRoutes(to routes: Routes) {
        let p = Self.prefix
        routes.post("\(p)/runs/create") { request, context in
            let body = try await Self.input(request, context)
            let experimentID = try body.idString("experiment_id")
            try await auth.requireExperiment(context, experimentID ?? "0", .edit)
            var user = try body.string("user_id")
            if context.authEnabled { user = context.actor.username }
            let run = try await tracking.createRun(
                experimentID: experimentID, userID: user, startTime: try body.int64("start_time"),
                runName: try body.string("run_name"), tags: try body.tags("tags"))
            return try JSONResponse.make(Envelope(key: "run", value: MLRun(run)))
        }
        routes.post("\(p)/runs/update") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            var status: RunStatus?
            if let raw = try body.idString("status") {
                guard let s = RunStatus(mlflowName: raw) else { throw LoomError.invalidParameter("Invalid value '\(raw)' for parameter 'status'") }
                status = s
            }
            let info = try await tracking.updateRun(id: runID, status: status, endTime: try body.int64("end_time"), runName: try body.string("run_name"))
            return try JSONResponse.make(Envelope(key: "run_info", value: MLRunInfo(info)))
        }
        routes.post("\(p)/runs/delete") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .manage)
            try await tracking.deleteRun(id: runID)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/restore") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .manage)
            try await tracking.restoreRun(id: runID)
            return JSONResponse.emptyObject
        }
        routes.get("\(p)/runs/get") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            let run = try await tracking.run(id: runID)
            try await auth.requireExperiment(context, run.info.experimentID, .read)
            return try JSONResponse.make(Envelope(key: "run", value: MLRun(run)))
        }
        routes.post("\(p)/runs/search") { request, context in
            let body = try await Self.input(request, context)
            let ids = try body.strings("experiment_ids")
            for id in ids { try await auth.requireExperiment(context, id, .read) }
            let page = try await tracking.searchRuns(
                experimentIDs: ids, filter: try body.string("filter"), viewType: try Self.viewType(body, "run_view_type"),
                maxResults: try body.int("max_results"), orderBy: try body.strings("order_by"), pageToken: try body.string("page_token"))
            return try JSONResponse.make(PagedEnvelope(key: "runs", items: page.items.map(MLRun.init), nextPageToken: page.nextPageToken))
        }
        routes.post("\(p)/runs/log-metric") { request, context in
            let data = try await request.bodyData(context: context)
            if let fast = FastBodies.metric(data), let runID = fast.runID {
                try await auth.requireRun(context, runID, .edit)
                try await tracking.logMetric(runID: runID, metric: fast.metric)
                return JSONResponse.emptyObject
            }
            let body = try JSONBody.parse(data)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            let metric = try Self.metric(body, path: "")
            try await tracking.logMetric(runID: runID, metric: metric)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/log-parameter") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            try await tracking.logParam(runID: runID, key: try body.requiredString("key"), value: try Self.stringValue(body, "value"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/set-tag") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            try await tracking.setTag(runID: runID, key: try body.requiredString("key"), value: try Self.stringValue(body, "value"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/delete-tag") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            try await tracking.deleteTag(runID: runID, key: try body.requiredString("key"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/log-batch") { request, context in
            let data = try await request.bodyData(context: context)
            if let fast = FastBodies.batch(data), let runID = fast.runID {
                try await auth.requireRun(context, runID, .edit)
                try await tracking.logBatch(
                    runID: runID, metrics: fast.metrics.map(\.metric),
                    params: fast.params.map { Param(key: $0.key, value: $0.value) },
                    tags: fast.tags.map { Tag(key: $0.key, value: $0.value) })
                return JSONResponse.emptyObject
            }
            let body = try JSONBody.parse(data)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            let metrics = try body.objects("metrics").enumerated().map { (i, m) throws(LoomError) in try Self.metric(m, path: "metrics[\(i)].") }
            try await tracking.logBatch(runID: runID, metrics: metrics, params: try body.tags("params"), tags: try body.tags("tags"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/log-inputs") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            let datasets = try body.objects("datasets").enumerated().map { (i, d) throws(LoomError) -> DatasetInput in
                guard let ds = try d.object("dataset") else { throw .invalidParameter("Missing value for required parameter 'datasets[\(i)].dataset'.") }
                let dataset = Dataset(
                    name: try ds.string("name") ?? "", digest: try ds.string("digest") ?? "",
                    sourceType: try ds.string("source_type") ?? "", source: try ds.string("source") ?? "",
                    schema: try ds.string("schema"), profile: try ds.string("profile"))
                return DatasetInput(tags: try d.tags("tags", valueRequired: false), dataset: dataset)
            }
            let models = try body.objects("models").map { m throws(LoomError) in ModelIO(modelID: try m.requiredString("model_id")) }
            try await tracking.logInputs(runID: runID, datasets: datasets, models: models)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/runs/outputs") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .edit)
            let models = try body.objects("models").map { m throws(LoomError) in ModelIO(modelID: try m.requiredString("model_id"), step: try m.int64("step") ?? 0) }
            try await tracking.logOutputs(runID: runID, models: models)
            return JSONResponse.emptyObject
        }
        routes.get("\(p)/metrics/get-history") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            try await auth.requireRun(context, runID, .read)
            let page = try await tracking.metricHistory(
                runID: runID, key: try body.requiredString("metric_key"), maxResults: try body.int("max_results"), pageToken: try body.string("page_token"))
            return try JSONResponse.make(PagedEnvelope(key: "metrics", items: page.items.map(MLMetric.init), nextPageToken: page.nextPageToken))
        }
        routes.get("\(p)/metrics/get-history-bulk-interval") { request, context in
            let body = try await Self.input(request, context)
            let runIDs = try body.strings("run_ids")
            for id in runIDs { try await auth.requireRun(context, id, .read) }
            let metrics = try await tracking.metricHistoryBulkInterval(
                runIDs: runIDs, key: try body.requiredString("metric_key"), startStep: try body.int64("start_step"),
                endStep: try body.int64("end_step"), maxResults: try body.int("max_results"))
            return try JSONResponse.make(["metrics": metrics.map(MLMetric.init)])
        }
        routes.get("\(p)/artifacts/list") { request, context in
            let body = try await Self.input(request, context)
            let runID = try Self.runID(body)
            let run = try await tracking.run(id: runID)
            try await auth.requireExperiment(context, run.info.experimentID, .read)
            var files: [MLFileInfo] = []
            if let root = try tracking.runArtifactRoot(run.info) {
                files = try await tracking.listArtifacts(root: root, relativePath: try body.string("path") ?? "").map(MLFileInfo.init)
            }
            return try JSONResponse.make(ArtifactListing(root_uri: run.info.artifactURI, files: files))
        }
    }

    struct ArtifactListing: Encodable, Sendable {
        let root_uri: String
        let files: [MLFileInfo]
    }

    /// A metric from `log-metric` or one entry of `log-batch`.
    static func metric(_ body: JSONBody, path: String) throws(LoomError) -> Metric {
        guard let key = try body.string("key") else { throw .invalidParameter("Missing value for required parameter '\(path)key'.") }
        guard let value = try body.double("value") else { throw .invalidParameter("Missing value for required parameter '\(path)value'.") }
        guard let timestamp = try body.int64("timestamp") else { throw .invalidParameter("Missing value for required parameter '\(path)timestamp'.") }
        return Metric(
            key: key, value: value, timestamp: timestamp, step: try body.int64("step") ?? 0,
            modelID: try body.string("model_id"), datasetName: try body.string("dataset_name"), datasetDigest: try body.string("dataset_digest"))
    }

    /// A param or tag value: required, a string (numbers are accepted and kept as written).
    static func stringValue(_ body: JSONBody, _ key: String) throws(LoomError) -> String {
        if let s = try body.idString(key) { return s }
        throw .invalidParameter("Missing value for required parameter '\(key)'. See the API docs for more information about request parameters.")
    }
}
