import Hummingbird
import LoomCore
import LoomStore
import LoomTracking

extension MLflowController {
    func addRegistryRoutes(to routes: Routes) {
        let p = Self.prefix + "/registered-models"
        let v = Self.prefix + "/model-versions"

        routes.post("\(p)/create") { request, context in
            let body = try await Self.input(request, context)
            try await auth.requireRole(context, .editor)
            let model = try await tracking.createRegisteredModel(
                name: try body.string("name"), description: try body.string("description"), tags: try body.tags("tags", valueRequired: false),
                workspace: context.workspace)
            try await auth.grantCreator(context, kind: .registeredModel, resource: model.name)
            return try JSONResponse.make(Envelope(key: "registered_model", value: MLRegisteredModel(model)))
        }
        routes.get("\(p)/get") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.string("name")
            let model = try await tracking.registeredModel(name: name, workspace: context.workspace)
            try await auth.requireModel(context, model.name, .read)
            return try JSONResponse.make(Envelope(key: "registered_model", value: MLRegisteredModel(model)))
        }
        routes.post("\(p)/rename") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .manage)
            let model = try await tracking.renameRegisteredModel(name: name, newName: try body.string("new_name"), workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "registered_model", value: MLRegisteredModel(model)))
        }
        routes.patch("\(p)/update") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            let model = try await tracking.updateRegisteredModel(name: name, description: try body.string("description"), workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "registered_model", value: MLRegisteredModel(model)))
        }
        routes.delete("\(p)/delete") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .manage)
            try await tracking.deleteRegisteredModel(name: name, workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.get("\(p)/search") { request, context in
            let body = try await Self.input(request, context)
            let page = try await tracking.searchRegisteredModels(
                filter: try body.string("filter"), maxResults: try body.int("max_results"), orderBy: try body.strings("order_by"),
                pageToken: try body.string("page_token"), workspace: context.workspace)
            var items: [MLRegisteredModel] = []
            for m in page.items where try await auth.canRead(context, model: m.name) { items.append(MLRegisteredModel(m)) }
            return try JSONResponse.make(PagedEnvelope(key: "registered_models", items: items, nextPageToken: page.nextPageToken))
        }
        let latest: Routes.Handler = { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .read)
            let versions = try await tracking.latestVersions(name: name, stages: try body.strings("stages"), workspace: context.workspace)
            return try JSONResponse.make(PagedEnvelope(key: "model_versions", items: versions.map(MLModelVersion.init), nextPageToken: nil))
        }
        routes.post("\(p)/get-latest-versions", latest)
        routes.get("\(p)/get-latest-versions", latest)
        routes.post("\(p)/set-tag") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.setRegisteredModelTag(name: name, key: try body.requiredString("key"), value: try body.idString("value") ?? "", workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.delete("\(p)/delete-tag") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteRegisteredModelTag(name: name, key: try body.requiredString("key"), workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.post("\(p)/alias") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.setAlias(name: name, alias: try body.string("alias"), version: try body.idString("version"), workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.delete("\(p)/alias") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteAlias(name: name, alias: try body.string("alias"), workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.get("\(p)/alias") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .read)
            let mv = try await tracking.modelVersion(name: name, alias: try body.string("alias"), workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "model_version", value: MLModelVersion(mv)))
        }

        routes.post("\(v)/create") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            var user = try body.string("user_id")
            if context.authEnabled { user = context.actor.username }
            let mv = try await tracking.createModelVersion(
                name: name, source: try body.string("source"), runID: try body.string("run_id"), runLink: try body.string("run_link"),
                description: try body.string("description"), tags: try body.tags("tags", valueRequired: false), modelID: try body.string("model_id"),
                userID: user, workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "model_version", value: MLModelVersion(mv)))
        }
        routes.get("\(v)/get") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .read)
            let mv = try await tracking.modelVersion(name: name, version: try body.idString("version"), workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "model_version", value: MLModelVersion(mv)))
        }
        routes.patch("\(v)/update") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            let mv = try await tracking.updateModelVersion(name: name, version: try body.idString("version"), description: try body.string("description"), workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "model_version", value: MLModelVersion(mv)))
        }
        routes.post("\(v)/transition-stage") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            let mv = try await tracking.transitionStage(
                name: name, version: try body.idString("version"), stage: try body.string("stage"),
                archiveExisting: try body.bool("archive_existing_versions") ?? false, workspace: context.workspace)
            return try JSONResponse.make(Envelope(key: "model_version", value: MLModelVersion(mv)))
        }
        routes.delete("\(v)/delete") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .manage)
            try await tracking.deleteModelVersion(name: name, version: try body.idString("version"), workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.get("\(v)/search") { request, context in
            let body = try await Self.input(request, context)
            let page = try await tracking.searchModelVersions(
                filter: try body.string("filter"), maxResults: try body.int("max_results"), orderBy: try body.strings("order_by"),
                pageToken: try body.string("page_token"), workspace: context.workspace)
            var items: [MLModelVersion] = []
            for mv in page.items where try await auth.canRead(context, model: mv.name) { items.append(MLModelVersion(mv)) }
            return try JSONResponse.make(PagedEnvelope(key: "model_versions", items: items, nextPageToken: page.nextPageToken))
        }
        routes.get("\(v)/get-download-uri") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .read)
            let uri = try await tracking.downloadURI(name: name, version: try body.idString("version"), workspace: context.workspace)
            return try JSONResponse.make(["artifact_uri": uri])
        }
        routes.post("\(v)/set-tag") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.setModelVersionTag(name: name, version: try body.idString("version"), key: try body.requiredString("key"),
                                                  value: try body.idString("value") ?? "", workspace: context.workspace)
            return JSONResponse.emptyObject
        }
        routes.delete("\(v)/delete-tag") { request, context in
            let body = try await Self.input(request, context)
            let name = try body.requiredString("name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteModelVersionTag(name: name, version: try body.idString("version"), key: try body.requiredString("key"), workspace: context.workspace)
            return JSONResponse.emptyObject
        }
    }
}
