import Foundation
import Hummingbird
import LoomCore
import LoomStore
import LoomTracking

extension APIv1Controller {
    func addRegistryRoutes(to routes: Routes) {
        let p = Self.prefix + "/models"
        routes.get(p) { request, context in
            let q = request.query
            let prompts = try q.bool("prompts") ?? false
            let page = try await tracking.searchRegisteredModels(
                filter: q["filter"], maxResults: try q.int("max_results"), orderBy: q.all("order_by"), pageToken: q["page_token"],
                workspace: context.workspace, prompts: prompts)
            var items: [RegisteredModel] = []
            for m in page.items where try await auth.canRead(context, model: m.name) { items.append(m) }
            return try Self.respond(Listing(items: items, nextPageToken: page.nextPageToken))
        }
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let m = try await tracking.createRegisteredModel(
                name: try body.string("name"), description: try body.string("description"), tags: try Self.tagMap(body, "tags"), workspace: context.workspace)
            try await auth.grantCreator(context, kind: .registeredModel, resource: m.name)
            return try Self.respond(m, status: .created)
        }
        routes.get("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            let m = try await tracking.registeredModel(name: name, workspace: context.workspace)
            try await auth.requireModel(context, name, .read)
            return try Self.respond(m)
        }
        routes.patch("\(p)/:name") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            var m = try await tracking.registeredModel(name: name, workspace: context.workspace)
            if body.has("description") {
                try await auth.requireModel(context, name, .edit)
                m = try await tracking.updateRegisteredModel(name: name, description: try body.string("description"), workspace: context.workspace)
            }
            if let newName = try body.string("name"), newName != name {
                try await auth.requireModel(context, name, .manage)
                m = try await tracking.renameRegisteredModel(name: name, newName: newName, workspace: context.workspace)
            }
            return try Self.respond(m)
        }
        routes.delete("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .manage)
            try await tracking.deleteRegisteredModel(name: name, workspace: context.workspace)
            return Self.noContent
        }
        routes.put("\(p)/:name/tags/:key") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            try await tracking.setRegisteredModelTag(name: name, key: try Self.param(context, "key"), value: try body.idString("value") ?? "", workspace: context.workspace)
            return Self.noContent
        }
        routes.delete("\(p)/:name/tags/:key") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteRegisteredModelTag(name: name, key: try Self.param(context, "key"), workspace: context.workspace)
            return Self.noContent
        }
        routes.get("\(p)/:name/aliases/:alias") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .read)
            let mv = try await tracking.modelVersion(name: name, alias: try Self.param(context, "alias"), workspace: context.workspace)
            return try Self.respond(mv)
        }
        routes.put("\(p)/:name/aliases/:alias") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            try await tracking.setAlias(name: name, alias: try Self.param(context, "alias"), version: try body.idString("version"), workspace: context.workspace)
            return try Self.respond(try await tracking.modelVersion(name: name, alias: try Self.param(context, "alias"), workspace: context.workspace))
        }
        routes.delete("\(p)/:name/aliases/:alias") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteAlias(name: name, alias: try Self.param(context, "alias"), workspace: context.workspace)
            return Self.noContent
        }
        routes.get("\(p)/:name/versions") { request, context in
            let name = try Self.param(context, "name")
            _ = try await tracking.registeredModel(name: name, workspace: context.workspace)
            try await auth.requireModel(context, name, .read)
            let q = request.query
            let filter = "name = '\(name.replacingOccurrences(of: "'", with: "''"))'" + (q["filter"].map { $0.isEmpty ? "" : " AND \($0)" } ?? "")
            let page = try await tracking.searchModelVersions(
                filter: filter, maxResults: try q.int("max_results") ?? 100, orderBy: q.all("order_by").isEmpty ? ["version_number DESC"] : q.all("order_by"),
                pageToken: q["page_token"], workspace: context.workspace, prompts: nil)
            return try Self.respond(Listing(items: page.items, nextPageToken: page.nextPageToken))
        }
        routes.post("\(p)/:name/versions") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            let mv = try await tracking.createModelVersion(
                name: name, source: try body.string("source"), runID: try body.string("run_id"), runLink: try body.string("run_link"),
                description: try body.string("description"), tags: try Self.tagMap(body, "tags"), modelID: try body.string("model_id"),
                userID: context.authEnabled ? context.actor.username : try body.string("user_id"), workspace: context.workspace)
            return try Self.respond(mv, status: .created)
        }
        routes.get("\(p)/:name/versions/:version") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .read)
            return try Self.respond(try await tracking.modelVersion(name: name, version: try Self.param(context, "version"), workspace: context.workspace))
        }
        routes.patch("\(p)/:name/versions/:version") { request, context in
            let name = try Self.param(context, "name")
            let version = try Self.param(context, "version")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            var mv = try await tracking.modelVersion(name: name, version: version, workspace: context.workspace)
            if body.has("description") {
                mv = try await tracking.updateModelVersion(name: name, version: version, description: try body.string("description"), workspace: context.workspace)
            }
            if let stage = try body.string("stage") {
                mv = try await tracking.transitionStage(name: name, version: version, stage: stage, archiveExisting: try body.bool("archive_existing_versions") ?? false, workspace: context.workspace)
            }
            return try Self.respond(mv)
        }
        routes.delete("\(p)/:name/versions/:version") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .manage)
            try await tracking.deleteModelVersion(name: name, version: try Self.param(context, "version"), workspace: context.workspace)
            return Self.noContent
        }
        routes.put("\(p)/:name/versions/:version/tags/:key") { request, context in
            let name = try Self.param(context, "name")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            try await tracking.setModelVersionTag(name: name, version: try Self.param(context, "version"), key: try Self.param(context, "key"),
                                                  value: try body.idString("value") ?? "", workspace: context.workspace)
            return Self.noContent
        }
        routes.delete("\(p)/:name/versions/:version/tags/:key") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .edit)
            try await tracking.deleteModelVersionTag(name: name, version: try Self.param(context, "version"), key: try Self.param(context, "key"), workspace: context.workspace)
            return Self.noContent
        }
    }
}
