import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomStore
import LoomTracking

/// `/api/v1/prompts/...`: the prompt registry (docs/prompts.md): versions, aliases, diffs and
/// rendering, over the same records MLflow's prompt calls use.
extension APIv1Controller {
    struct PromptVersionBody: Encodable, Sendable {
        let name: String
        let version: String
        let type: String
        let template: JSONValue
        let variables: [String]
        let modelConfig: JSONValue?
        let commitMessage: String?
        let aliases: [String]
        let tags: [String: String]
        let createdBy: String?
        let creationTime: Millis

        init(_ v: PromptService.Version) {
            name = v.version.name
            version = v.version.version
            type = v.content.isChat ? "chat" : "text"
            switch v.content.template {
            case .text(let s): template = .string(s)
            case .chat(let messages): template = .array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
            }
            variables = v.content.variables
            modelConfig = v.content.modelConfig.isEmpty ? nil : .object(v.content.modelConfig)
            commitMessage = v.version.description
            aliases = v.version.aliases
            let hidden: Set<String> = [PromptContent.isPromptTag, PromptContent.textTag, PromptContent.typeTag, PromptContent.modelConfigTag]
            tags = Dictionary(v.version.tags.filter { !hidden.contains($0.key) }.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            createdBy = v.version.userID
            creationTime = v.version.creationTimestamp
        }
    }

    struct PromptBody: Encodable, Sendable {
        let name: String
        let description: String?
        let aliases: [String: String]
        let latestVersion: String?
        let versions: [PromptVersionBody]?
        let creationTime: Millis
        let lastUpdatedTime: Millis

        init(_ model: RegisteredModel, versions: [PromptService.Version], withVersions: Bool) {
            name = model.name
            description = model.description
            aliases = Dictionary(model.aliases.map { ($0.alias, $0.version) }, uniquingKeysWith: { a, _ in a })
            latestVersion = versions.first?.version.version
            self.versions = withVersions ? versions.map(PromptVersionBody.init) : nil
            creationTime = model.creationTimestamp
            lastUpdatedTime = model.lastUpdatedTimestamp
        }
    }

    struct PromptDiffBody: Encodable, Sendable {
        struct Change: Encodable, Sendable {
            let key: String
            let from: JSONValue?
            let to: JSONValue?
        }

        let name: String
        let from: String
        let to: String
        let templateDiff: String
        let variablesAdded: [String]
        let variablesRemoved: [String]
        let modelConfigChanges: [Change]
        let commitMessage: String?
    }

    struct RenderedBody: Encodable, Sendable {
        let name: String
        let version: String
        let reference: String
        let type: String
        let text: String?
        let messages: [[String: String]]
        let modelConfig: JSONValue?
    }

    func addPromptRoutes(to routes: Routes) {
        let p = Self.prefix + "/prompts"
        let prompts = services.gateway.prompts
        let gateway = services.gateway.gateway
        let tracking = services.tracking
        let auth = self.auth

        // A new version (the prompt is made with its first): {name, template, model_config, commit_message, tags}.
        routes.post(p) { request, context in
            let body = try await Self.body(request, context)
            let name = try body.requiredString("name")
            // A new version of an existing prompt needs edit permission on it; a new prompt, the editor role.
            if (try? await tracking.registeredModel(name: name, workspace: context.workspace)) != nil {
                try await auth.requireModel(context, name, .edit)
            } else {
                try await auth.requireRole(context, .editor)
            }
            guard !name.isEmpty, name.utf8.count <= 256, name.utf8.allSatisfy({ c in
                ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D || c == 0x2E
            }) else { throw LoomError.invalidParameter("A prompt's name holds letters, digits, _, - and . (at most 256), not '\(name)'") }
            let content = try PromptContent(template: body.fields["template"], modelConfig: body.fields["model_config"])
            let tags = try (body.object("tags")?.fields ?? [:]).sorted { $0.key < $1.key }.map { key, value throws(LoomError) -> Tag in
                guard let s = value.stringValue else { throw LoomError.invalidParameter("tags.\(key) must be text") }
                guard !key.hasPrefix("mlflow.prompt.") && !key.hasPrefix("_mlflow_prompt") else {
                    throw LoomError.invalidParameter("tags.\(key) is kept by the registry itself: give the template and model_config instead")
                }
                return Tag(key: key, value: s)
            }
            let made = try await prompts.create(
                name: name, content: content, commitMessage: try body.string("commit_message"), tags: tags, workspace: context.workspace,
                actor: context.actor.username)
            return try Self.respond(PromptVersionBody(made), status: .created)
        }
        routes.get(p) { request, context in
            try await auth.requireRole(context, .viewer)
            let page = try await tracking.searchRegisteredModels(
                filter: nil, maxResults: try Self.limit(request), orderBy: ["name ASC"], pageToken: request.uri.queryParameters["page_token"].map(String.init),
                workspace: context.workspace, prompts: true)
            var items: [PromptBody] = []
            for model in page.items {
                let (_, versions) = try await prompts.prompt(name: model.name, workspace: context.workspace)
                items.append(PromptBody(model, versions: versions, withVersions: false))
            }
            return try Self.respond(Listing(items: items, nextPageToken: page.nextPageToken))
        }
        routes.get("\(p)/:name") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .read)
            let (model, versions) = try await prompts.prompt(name: name, workspace: context.workspace)
            return try Self.respond(PromptBody(model, versions: versions, withVersions: true))
        }
        routes.get("\(p)/:name/versions/:version") { _, context in
            let name = try Self.param(context, "name")
            let version = try Self.param(context, "version")
            try await auth.requireModel(context, name, .read)
            guard Int(version).map({ $0 > 0 }) == true else { throw LoomError.invalidParameter("version must be a version number, not \(version)") }
            return try Self.respond(PromptVersionBody(try await prompts.version(PromptReference(name: name, version: version), workspace: context.workspace)))
        }
        // The changes from one version to another (default: the latest against the one before).
        routes.get("\(p)/:name/diff") { request, context in
            let name = try Self.param(context, "name")
            try await auth.requireModel(context, name, .read)
            let (_, versions) = try await prompts.prompt(name: name, workspace: context.workspace)
            func find(_ key: String, _ fallback: PromptService.Version?) throws -> PromptService.Version {
                guard let raw = request.uri.queryParameters[Substring(key)].map(String.init) else {
                    guard let fallback else { throw LoomError.invalidParameter("Prompt \(name) has one version: give from and to") }
                    return fallback
                }
                guard let v = versions.first(where: { $0.version.version == raw }) else { throw LoomError.notFound("Prompt \(name) has no version \(raw)") }
                return v
            }
            let to = try find("to", versions.first)
            let from = try find("from", versions.first { (Int($0.version.version) ?? 0) < (Int(to.version.version) ?? 0) })
            let diff = TextDiff.unified(
                from.content.readableText, to.content.readableText, oldLabel: "\(name)@\(from.version.version)", newLabel: "\(name)@\(to.version.version)")
            let keys = Set(from.content.modelConfig.keys).union(to.content.modelConfig.keys).sorted()
            let changes = keys.compactMap { k -> PromptDiffBody.Change? in
                from.content.modelConfig[k] == to.content.modelConfig[k] ? nil : .init(key: k, from: from.content.modelConfig[k], to: to.content.modelConfig[k])
            }
            return try Self.respond(PromptDiffBody(
                name: name, from: from.version.version, to: to.version.version, templateDiff: diff,
                variablesAdded: to.content.variables.filter { !from.content.variables.contains($0) },
                variablesRemoved: from.content.variables.filter { !to.content.variables.contains($0) }, modelConfigChanges: changes,
                commitMessage: to.version.description))
        }
        routes.put("\(p)/:name/aliases/:alias") { request, context in
            let name = try Self.param(context, "name")
            let alias = try Self.param(context, "alias")
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, name, .edit)
            _ = try await prompts.prompt(name: name, workspace: context.workspace)
            guard Int(alias) == nil else { throw LoomError.invalidParameter("An alias cannot be a number (\(alias) would read as a version)") }
            let version = try body.idString("version")
            try await tracking.setAlias(name: name, alias: alias, version: version, workspace: context.workspace)
            gateway.forgetPrompts()
            return try Self.respond(PromptVersionBody(try await prompts.version(PromptReference(name: name, alias: alias), workspace: context.workspace)))
        }
        routes.delete("\(p)/:name/aliases/:alias") { _, context in
            let name = try Self.param(context, "name")
            let alias = try Self.param(context, "alias")
            try await auth.requireModel(context, name, .edit)
            _ = try await prompts.prompt(name: name, workspace: context.workspace)
            try await tracking.deleteAlias(name: name, alias: alias, workspace: context.workspace)
            gateway.forgetPrompts()
            return Self.noContent
        }
        // `{name}` is NAME, NAME@ALIAS or NAME@VERSION: {variables} in, the rendered prompt out.
        routes.post("\(p)/:name/render") { request, context in
            let reference = try PromptReference(parsing: try Self.param(context, "name"))
            let body = try await Self.body(request, context)
            try await auth.requireModel(context, reference.name, .read)
            let values = try body.object("variables")?.fields ?? [:]
            let v = try await prompts.version(reference, workspace: context.workspace)
            let messages = try v.content.render(values)
            return try Self.respond(RenderedBody(
                name: v.version.name, version: v.version.version, reference: reference.description, type: v.content.isChat ? "chat" : "text",
                text: v.content.isChat ? nil : messages.first?.content, messages: messages.map { ["role": $0.role, "content": $0.content] },
                modelConfig: v.content.modelConfig.isEmpty ? nil : .object(v.content.modelConfig)))
        }
    }
}
