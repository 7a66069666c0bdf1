import Hummingbird
import LoomCore
import LoomStore
import LoomTracking

extension MLflowController {
    func addExperimentRoutes(to routes: Routes) {
        let p = Self.prefix
        routes.post("\(p)/experiments/create") { request, context in
            let body = try await Self.input(request, context)
            try await auth.requireRole(context, .editor)
            let experiment = try await tracking.createExperiment(
                name: try body.string("name"), artifactLocation: try body.string("artifact_location"),
                tags: try body.tags("tags"), workspace: context.workspace)
            try await auth.grantCreator(context, kind: .experiment, resource: experiment.id)
            return try JSONResponse.make(["experiment_id": experiment.id])
        }
        routes.get("\(p)/experiments/get") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            guard !id.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'experiment_id'. See the API docs for more information about request parameters.") }
            let experiment = try await tracking.experiment(id: id)
            try await auth.requireExperiment(context, id, .read)
            return try JSONResponse.make(Envelope(key: "experiment", value: MLExperiment(experiment)))
        }
        routes.get("\(p)/experiments/get-by-name") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("experiment_name")
            let experiment = try await tracking.experiment(named: name, workspace: context.workspace)
            try await auth.requireExperiment(context, experiment.id, .read)
            return try JSONResponse.make(Envelope(key: "experiment", value: MLExperiment(experiment)))
        }
        let search: Routes.Handler = { request, context in
            let body = try await Self.input(request, context)
            let page = try await tracking.searchExperiments(
                filter: try body.string("filter"), orderBy: try body.strings("order_by"),
                viewType: try Self.viewType(body, "view_type"), maxResults: try body.int("max_results"),
                pageToken: try body.string("page_token"), workspace: context.workspace)
            var visible: [MLExperiment] = []
            for e in page.items where try await auth.canRead(context, experimentID: e.id) {
                visible.append(MLExperiment(e))
            }
            return try JSONResponse.make(PagedEnvelope(key: "experiments", items: visible, nextPageToken: page.nextPageToken))
        }
        routes.post("\(p)/experiments/search", search)
        routes.get("\(p)/experiments/search", search)
        routes.post("\(p)/experiments/delete") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            try await auth.requireExperiment(context, id, .manage)
            try await tracking.deleteExperiment(id: id)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/experiments/restore") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            try await auth.requireExperiment(context, id, .manage)
            try await tracking.restoreExperiment(id: id)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/experiments/update") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            try await auth.requireExperiment(context, id, .edit)
            try await tracking.renameExperiment(id: id, newName: try body.string("new_name"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/experiments/set-experiment-tag") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            try await auth.requireExperiment(context, id, .edit)
            try await tracking.setExperimentTag(id: id, key: try body.requiredString("key"), value: try body.string("value") ?? "")
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/experiments/delete-experiment-tag") { request, context in
            let body = try await Self.input(request, context)
            let id = try body.idString("experiment_id") ?? ""
            try await auth.requireExperiment(context, id, .edit)
            try await tracking.deleteExperimentTag(id: id, key: try body.requiredString("key"))
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/experiments/search-datasets") { request, context in
            let body = try await Self.input(request, context)
            let ids = try body.strings("experiment_ids")
            for id in ids { try await auth.requireExperiment(context, id, .read) }
            var summaries: [[String: String]] = []
            for id in ids {
                for d in try await tracking.store.searchDatasets(experimentIDs: [id]) {
                    summaries.append(["experiment_id": id, "name": d.name, "digest": d.digest])
                }
            }
            return try JSONResponse.make(["dataset_summaries": summaries])
        }
    }
}
