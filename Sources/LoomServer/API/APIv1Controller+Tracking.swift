import Foundation
import HTTPTypes
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking
import NIOCore

extension APIv1Controller {
    func addExperimentRoutes(to routes: Routes) {
        let p = Self.prefix + "/experiments"
        routes.get(p) { request, context in
            let q = request.query
            let page = try await tracking.searchExperiments(
                filter: q["filter"], orderBy: q.all("order_by"), viewType: try Self.viewType(q), maxResults: try q.int("max_results") ?? 100,
                pageToken: q["page_token"], workspace: context.workspace)
            var items: [Experiment] = []
            for e in page.items where try await auth.canRead(context, experimentID: e.id) { items.append(e) }
            return try Self.respond(Listing(items: items, nextPageToken: page.nextPageToken))
        }
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let e = try await tracking.createExperiment(
                name: try body.string("name"), artifactLocation: try body.string("artifact_location"), tags: try Self.tagMap(body, "tags"),
                workspace: context.workspace)
            try await auth.grantCreator(context, kind: .experiment, resource: e.id)
            return try Self.respond(e, status: .created)
        }
        routes.get("\(p)/:experiment_id") { _, context in
            let id = try Self.param(context, "experiment_id")
            let e = try await tracking.experiment(id: id)
            try await auth.requireExperiment(context, id, .read)
            return try Self.respond(e)
        }
        routes.patch("\(p)/:experiment_id") { request, context in
            let id = try Self.param(context, "experiment_id")
            let body = try await Self.body(request, context)
            try await auth.requireExperiment(context, id, .edit)
            if let name = try body.string("name") { try await tracking.renameExperiment(id: id, newName: name) }
            return try Self.respond(try await tracking.experiment(id: id))
        }
        routes.delete("\(p)/:experiment_id") { _, context in
            let id = try Self.param(context, "experiment_id")
            try await auth.requireExperiment(context, id, .manage)
            try await tracking.deleteExperiment(id: id)
            return Self.noContent
        }
        routes.post("\(p)/:experiment_id/restore") { _, context in
            let id = try Self.param(context, "experiment_id")
            try await auth.requireExperiment(context, id, .manage)
            try await tracking.restoreExperiment(id: id)
            return try Self.respond(try await tracking.experiment(id: id))
        }
        routes.put("\(p)/:experiment_id/tags/:key") { request, context in
            let id = try Self.param(context, "experiment_id")
            let key = try Self.param(context, "key")
            let body = try await Self.body(request, context)
            try await auth.requireExperiment(context, id, .edit)
            try await tracking.setExperimentTag(id: id, key: key, value: try body.idString("value") ?? "")
            return Self.noContent
        }
        routes.delete("\(p)/:experiment_id/tags/:key") { _, context in
            let id = try Self.param(context, "experiment_id")
            try await auth.requireExperiment(context, id, .edit)
            try await tracking.deleteExperimentTag(id: id, key: try Self.param(context, "key"))
            return Self.noContent
        }
    }

    func addRunRoutes(to routes: Routes) {
        let p = Self.prefix + "/runs"
        routes.get(p) { request, context in
            let q = request.query
            let ids = q.all("experiment_id")
            guard !ids.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'experiment_id'.") }
            for id in ids { try await auth.requireExperiment(context, id, .read) }
            let page = try await tracking.searchRuns(
                experimentIDs: ids, filter: q["filter"], viewType: try Self.viewType(q), maxResults: try q.int("max_results") ?? 100,
                orderBy: q.all("order_by"), pageToken: q["page_token"])
            return try Self.respond(Listing(items: page.items, nextPageToken: page.nextPageToken))
        }
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            let experimentID = try body.idString("experiment_id") ?? "0"
            try await auth.requireExperiment(context, experimentID, .edit)
            let run = try await tracking.createRun(
                experimentID: experimentID, userID: context.authEnabled ? context.actor.username : try body.string("user_id"),
                startTime: try body.int64("start_time"), runName: try body.string("name"), tags: try Self.tagMap(body, "tags"))
            return try Self.respond(run, status: .created)
        }
        routes.get("\(p)/:run_id") { _, context in
            let id = try Self.param(context, "run_id")
            let run = try await tracking.run(id: id)
            try await auth.requireExperiment(context, run.info.experimentID, .read)
            return try Self.respond(run)
        }
        routes.patch("\(p)/:run_id") { request, context in
            let id = try Self.param(context, "run_id")
            let body = try await Self.body(request, context)
            try await auth.requireRun(context, id, .edit)
            var status: RunStatus?
            if let raw = try body.string("status") {
                guard let s = RunStatus(mlflowName: raw) else { throw LoomError.invalidParameter("Invalid run status '\(raw)'") }
                status = s
            }
            let info = try await tracking.updateRun(id: id, status: status, endTime: try body.int64("end_time"), runName: try body.string("name"))
            return try Self.respond(info)
        }
        routes.delete("\(p)/:run_id") { _, context in
            let id = try Self.param(context, "run_id")
            try await auth.requireRun(context, id, .manage)
            try await tracking.deleteRun(id: id)
            return Self.noContent
        }
        routes.post("\(p)/:run_id/restore") { _, context in
            let id = try Self.param(context, "run_id")
            try await auth.requireRun(context, id, .manage)
            try await tracking.restoreRun(id: id)
            return try Self.respond(try await tracking.run(id: id))
        }
        routes.post("\(p)/:run_id/log") { request, context in
            let id = try Self.param(context, "run_id")
            let body = try await Self.body(request, context)
            try await auth.requireRun(context, id, .edit)
            let now = Clock.nowMillis()
            let metrics = try body.objects("metrics").enumerated().map { (i, m) throws(LoomError) -> Metric in
                guard let key = try m.string("key") else { throw .invalidParameter("Missing value for required parameter 'metrics[\(i)].key'.") }
                guard let value = try m.double("value") else { throw .invalidParameter("Missing value for required parameter 'metrics[\(i)].value'.") }
                return Metric(key: key, value: value, timestamp: try m.int64("timestamp") ?? now, step: try m.int64("step") ?? 0)
            }
            try await tracking.logBatch(runID: id, metrics: metrics, params: try Self.tagMap(body, "params"), tags: try Self.tagMap(body, "tags"))
            return Self.noContent
        }
        routes.get("\(p)/:run_id/metrics/:key") { request, context in
            let id = try Self.param(context, "run_id")
            let key = try Self.param(context, "key")
            try await auth.requireRun(context, id, .read)
            _ = try await tracking.run(id: id)
            let maxPoints = try request.query.int("max_points")
            if let maxPoints, maxPoints < 1 || maxPoints > 100_000 {
                throw LoomError.invalidParameter("'max_points' must be between 1 and 100000")
            }
            let series = try await tracking.metricHistoryBulkInterval(runIDs: [id], key: key, startStep: nil, endStep: nil, maxResults: min(maxPoints ?? 2500, 2500))
            struct Series: Encodable, Sendable { let runId: String; let key: String; let points: [Metric] }
            return try Self.respond(Series(runId: id, key: key, points: series.map { var m = $0; m.runID = nil; return m }))
        }
        routes.put("\(p)/:run_id/tags/:key") { request, context in
            let id = try Self.param(context, "run_id")
            let body = try await Self.body(request, context)
            try await auth.requireRun(context, id, .edit)
            try await tracking.setTag(runID: id, key: try Self.param(context, "key"), value: try body.idString("value") ?? "")
            return Self.noContent
        }
        routes.delete("\(p)/:run_id/tags/:key") { _, context in
            let id = try Self.param(context, "run_id")
            try await auth.requireRun(context, id, .edit)
            try await tracking.deleteTag(runID: id, key: try Self.param(context, "key"))
            return Self.noContent
        }
        // Artifacts of a run: list, download, upload (returns the digest), delete.
        routes.get("\(p)/:run_id/artifacts") { request, context in
            let id = try Self.param(context, "run_id")
            let (root, _) = try await runArtifactRoot(context, id, .read)
            let entries = try await tracking.listArtifacts(root: root, relativePath: request.query["path"] ?? "")
            return try Self.respond(Listing(items: entries, nextPageToken: nil))
        }
        routes.get("\(p)/:run_id/artifacts/**") { _, context in
            let id = try Self.param(context, "run_id")
            let (root, _) = try await runArtifactRoot(context, id, .read)
            let path = root.appending(try ArtifactsController.path(context))
            return try await ArtifactsController.download(path, from: tracking.artifacts, attachment: false)
        }
        routes.put("\(p)/:run_id/artifacts/**") { request, context in
            let id = try Self.param(context, "run_id")
            let (root, _) = try await runArtifactRoot(context, id, .edit)
            let path = root.appending(try ArtifactsController.path(context))
            var stored = try await tracking.artifacts.write(path, from: request.body, maxBytes: services.configuration.maxArtifactBytes)
            stored.path = path.relative(to: root).string
            return try Self.respond(stored, status: .created)
        }
        routes.delete("\(p)/:run_id/artifacts/**") { _, context in
            let id = try Self.param(context, "run_id")
            let (root, _) = try await runArtifactRoot(context, id, .edit)
            try await tracking.artifacts.delete(root.appending(try ArtifactsController.path(context)))
            return Self.noContent
        }

        routes.get(Self.prefix + "/logged-models") { request, context in
            let q = request.query
            let ids = q.all("experiment_id")
            guard !ids.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'experiment_id'.") }
            for id in ids { try await auth.requireExperiment(context, id, .read) }
            let page = try await tracking.searchLoggedModels(experimentIDs: ids, filter: q["filter"], orderBy: [], maxResults: try q.int("max_results"), pageToken: q["page_token"])
            return try Self.respond(Listing(items: page.items, nextPageToken: page.nextPageToken))
        }
        routes.get(Self.prefix + "/logged-models/:model_id") { _, context in
            let model = try await tracking.loggedModel(id: try Self.param(context, "model_id"))
            try await auth.requireExperiment(context, model.experimentID, .read)
            return try Self.respond(model)
        }
    }

    /// The artifact root of a run served by Loom, after checking the caller's permission.
    func runArtifactRoot(_ context: Context, _ runID: String, _ needed: Permission) async throws -> (ArtifactPath, RunInfo) {
        let run = try await tracking.run(id: runID)
        try await auth.requireExperiment(context, run.info.experimentID, needed)
        guard let root = try tracking.runArtifactRoot(run.info) else {
            throw LoomError.invalidParameter("The artifacts of run \(runID) are stored outside Loom (\(run.info.artifactURI))")
        }
        return (root, run.info)
    }
}
