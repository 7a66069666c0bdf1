import Foundation
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking

extension MLflowController {
    func addLoggedModelRoutes(to routes: Routes) {
        let p = Self.prefix + "/logged-models"
        routes.post(p) { request, context in
            let body = try await Self.input(request, context)
            let experimentID = try body.idString("experiment_id")
            try await auth.requireExperiment(context, experimentID ?? "", .edit)
            let model = try await tracking.createLoggedModel(
                experimentID: experimentID, name: try body.string("name"), modelType: try body.string("model_type"),
                sourceRunID: try body.string("source_run_id"), params: try body.tags("params"), tags: try body.tags("tags"))
            return try JSONResponse.make(Envelope(key: "model", value: MLLoggedModel(model)))
        }
        routes.post("\(p)/search") { request, context in
            let body = try await Self.input(request, context)
            let ids = try body.strings("experiment_ids")
            guard !ids.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'experiment_ids'.") }
            for id in ids { try await auth.requireExperiment(context, id, .read) }
            let orders = try body.objects("order_by").map { o throws(LoomError) -> SearchOrder in
                let field = try o.requiredString("field_name")
                let ascending = try o.bool("ascending") ?? true
                if field.hasPrefix("metrics.") {
                    return SearchOrder(entity: .metric, key: String(field.dropFirst("metrics.".count)), ascending: ascending)
                }
                let key = field.hasPrefix("attributes.") ? String(field.dropFirst("attributes.".count)) : field
                let canonical = ["creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"][key] ?? key
                guard ["name", "model_id", "creation_timestamp", "last_updated_timestamp", "status", "model_type", "source_run_id"].contains(canonical) else {
                    throw .invalidParameter("Invalid order_by field name '\(field)'")
                }
                return SearchOrder(entity: .attribute, key: canonical, ascending: ascending)
            }
            let page = try await tracking.searchLoggedModels(
                experimentIDs: ids, filter: try body.string("filter"), orderBy: orders, maxResults: try body.int("max_results"),
                pageToken: try body.string("page_token"))
            return try JSONResponse.make(PagedEnvelope(key: "models", items: page.items.map(MLLoggedModel.init), nextPageToken: page.nextPageToken))
        }
        routes.get("\(p)/:model_id") { request, context in
            let id = try context.parameters.require("model_id")
            let model = try await tracking.loggedModel(id: id)
            try await auth.requireExperiment(context, model.experimentID, .read)
            return try JSONResponse.make(Envelope(key: "model", value: MLLoggedModel(model)))
        }
        routes.patch("\(p)/:model_id") { request, context in
            let id = try context.parameters.require("model_id")
            let body = try await Self.input(request, context)
            try await auth.requireLoggedModel(context, id, .edit)
            guard let raw = try body.idString("status"), let status = LoggedModelStatus(mlflowName: raw) else {
                throw LoomError.invalidParameter("Missing or invalid value for required parameter 'status'.")
            }
            let model = try await tracking.finalizeLoggedModel(id: id, status: status)
            return try JSONResponse.make(Envelope(key: "model", value: MLLoggedModel(model)))
        }
        routes.delete("\(p)/:model_id") { request, context in
            let id = try context.parameters.require("model_id")
            try await auth.requireLoggedModel(context, id, .manage)
            try await tracking.deleteLoggedModel(id: id)
            return JSONResponse.emptyObject
        }
        routes.patch("\(p)/:model_id/tags") { request, context in
            let id = try context.parameters.require("model_id")
            let body = try await Self.input(request, context)
            try await auth.requireLoggedModel(context, id, .edit)
            try await tracking.setLoggedModelTags(id: id, tags: try body.tags("tags", valueRequired: false))
            return JSONResponse.emptyObject
        }
        routes.delete("\(p)/:model_id/tags/:tag_key") { request, context in
            let id = try context.parameters.require("model_id")
            let key = try context.parameters.require("tag_key")
            try await auth.requireLoggedModel(context, id, .edit)
            try await tracking.deleteLoggedModelTag(id: id, key: key.removingPercentEncoding ?? key)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/:model_id/params") { request, context in
            let id = try context.parameters.require("model_id")
            let body = try await Self.input(request, context)
            try await auth.requireLoggedModel(context, id, .edit)
            try await tracking.logLoggedModelParams(id: id, params: try body.tags("params"))
            return JSONResponse.emptyObject
        }
        routes.get("\(p)/:model_id/artifacts/directories") { request, context in
            let id = try context.parameters.require("model_id")
            let model = try await tracking.loggedModel(id: id)
            try await auth.requireExperiment(context, model.experimentID, .read)
            let query = request.query
            var files: [MLFileInfo] = []
            if let root = try tracking.artifactPath(forURI: model.artifactLocation) {
                files = try await tracking.listArtifacts(root: root, relativePath: query["artifact_directory_path"] ?? "").map(MLFileInfo.init)
            }
            return try JSONResponse.make(ArtifactListing(root_uri: model.artifactLocation, files: files))
        }
    }
}
