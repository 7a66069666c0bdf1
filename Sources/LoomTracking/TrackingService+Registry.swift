import LoomCore
import LoomStore

extension TrackingService {
    static let promptTag = "mlflow.prompt.is_prompt"

    /// Splits the prompt marker out of a registry filter, as MLflow's server does: a search returns
    /// prompts only when asked (`tags.`mlflow.prompt.is_prompt` = 'true'`), plain models otherwise.
    static func promptScope(_ clauses: [SearchClause]) -> ([SearchClause], Bool) {
        var prompts = false
        var rest: [SearchClause] = []
        for c in clauses {
            if c.entity == .tag && c.key == promptTag {
                let v = c.value.stringValue?.lowercased()
                prompts = (c.comparator == .equal && v == "true") || (c.comparator == .notEqual && v == "false")
            } else {
                rest.append(c)
            }
        }
        return (rest, prompts)
    }

    public func createRegisteredModel(name: String?, description: String?, tags: [Tag], workspace: String = Workspace.defaultName) async throws -> RegisteredModel {
        try Validate.modelName(name)
        for t in tags { try Validate.registryTag(t) }
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        return try await store.createRegisteredModel(name: name!, workspace: workspace, description: description, tags: tags, time: now)
    }

    public func registeredModel(name: String?, workspace: String = Workspace.defaultName) async throws -> RegisteredModel {
        try Validate.modelName(name)
        guard let m = try await store.registeredModel(named: name!, workspace: workspace) else {
            throw LoomError.notFound("Registered Model with name=\(name!) not found")
        }
        return m
    }

    public func renameRegisteredModel(name: String?, newName: String?, workspace: String = Workspace.defaultName) async throws -> RegisteredModel {
        try Validate.modelName(name)
        try Validate.modelName(newName, path: "new_name")
        return try await store.renameRegisteredModel(name: name!, workspace: workspace, to: newName!, time: now)
    }

    public func updateRegisteredModel(name: String?, description: String?, workspace: String = Workspace.defaultName) async throws -> RegisteredModel {
        try Validate.modelName(name)
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        return try await store.updateRegisteredModel(name: name!, workspace: workspace, description: description, time: now)
    }

    public func deleteRegisteredModel(name: String?, workspace: String = Workspace.defaultName) async throws {
        try Validate.modelName(name)
        try await store.deleteRegisteredModel(name: name!, workspace: workspace)
    }

    public func searchRegisteredModels(filter: String?, maxResults: Int?, orderBy: [String], pageToken: String?, workspace: String = Workspace.defaultName, prompts: Bool? = nil) async throws -> Page<RegisteredModel> {
        let parsed = try SearchFilterParser.parse(filter, grammar: .registeredModels)
        let (clauses, wantsPrompts) = Self.promptScope(parsed)
        let orders = try orderBy.map { term throws(LoomError) in try SearchFilterParser.parseOrder(term, grammar: .registeredModels) }
        let limit = try Self.pageSize(maxResults, default: 100, max: Limits.maxRegisteredModelsPerSearch)
        return try await store.searchRegisteredModels(EntitySearch(
            filter: clauses, orderBy: orders, maxResults: limit, offset: try PageToken.decode(pageToken), workspace: workspace,
            prompts: prompts ?? wantsPrompts))
    }

    public func setRegisteredModelTag(name: String?, key: String, value: String, workspace: String = Workspace.defaultName) async throws {
        try Validate.modelName(name)
        let tag = Tag(key: key, value: value)
        try Validate.registryTag(tag)
        try await store.setRegisteredModelTag(name: name!, workspace: workspace, tag: tag)
    }

    public func deleteRegisteredModelTag(name: String?, key: String, workspace: String = Workspace.defaultName) async throws {
        try Validate.modelName(name)
        try await store.deleteRegisteredModelTag(name: name!, workspace: workspace, key: key)
    }

    public func latestVersions(name: String?, stages: [String], workspace: String = Workspace.defaultName) async throws -> [ModelVersion] {
        try Validate.modelName(name)
        let parsed = try stages.map { s throws(LoomError) -> ModelStage in
            guard let st = ModelStage(caseInsensitive: s) else {
                throw .invalidParameter("Invalid Model Version stage: \(s). Value must be one of None, Staging, Production, Archived.")
            }
            return st
        }
        return try await store.latestVersions(name: name!, workspace: workspace, stages: parsed)
    }

    public func createModelVersion(name: String?, source: String?, runID: String?, runLink: String?, description: String?, tags: [Tag], modelID: String?, userID: String?, workspace: String = Workspace.defaultName) async throws -> ModelVersion {
        try Validate.modelName(name)
        guard let source, !source.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'source'.") }
        for t in tags { try Validate.registryTag(t) }
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        var runID = runID?.isEmpty == true ? nil : runID
        var modelID = modelID?.isEmpty == true ? nil : modelID
        if let runID { try Validate.runID(runID) }
        try await validateSource(source, runID: &runID, modelID: &modelID)
        let version = try await store.createModelVersion(NewModelVersion(
            name: name!, source: source, runID: runID, runLink: runLink?.isEmpty == true ? nil : runLink,
            description: description, userID: userID, tags: tags, modelID: modelID, time: now), workspace: workspace)
        if source != "dummy-source" && source != "prompt-template" {
            // Lineage: the stored model the version was registered from (docs/lineage.md).
            try? await store.addLineageEdges([LineageEdge(
                workspace: workspace, source: LineageNodes.artifact(source), target: LineageNodes.model(version.name, version.version),
                relation: "registered", creationTime: now)])
        }
        return version
    }

    /// Checks that a version's source belongs to the run or logged model it names, so that a
    /// version cannot be pointed at files the caller could not otherwise read (MLflow's rule).
    func validateSource(_ source: String, runID: inout String?, modelID: inout String?) async throws {
        func invalid() -> LoomError {
            .invalidParameter("Invalid model version source: '\(source)'. The run_id request parameter must identify the resource that contains the source.")
        }
        if source == "dummy-source" || source == "prompt-template" { return }
        if source.hasPrefix("runs:/") {
            let rid = String(source.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).first ?? "")
            guard runID == rid else { throw invalid() }
            guard try await store.runInfo(id: rid) != nil else { throw LoomError.notFound("Run with id=\(rid) not found") }
            return
        }
        if source.hasPrefix("models:/") {
            let ref = String(source.dropFirst("models:/".count))
            if ref.hasPrefix("m-"), !ref.contains("/") {
                if let modelID, modelID != ref { throw invalid() }
                guard let lm = try await store.loggedModel(id: ref) else { throw LoomError.notFound("Logged model with ID '\(ref)' not found.") }
                modelID = ref
                if runID == nil { runID = lm.sourceRunID }
            }
            return
        }
        if let modelID {
            guard let lm = try await store.loggedModel(id: modelID) else { throw LoomError.notFound("Logged model with ID '\(modelID)' not found.") }
            if runID == nil { runID = lm.sourceRunID }
            if source.hasPrefix(artifactScheme) || !source.contains("://") {
                guard Self.isWithin(source, lm.artifactLocation) else { throw invalid() }
            }
            return
        }
        if source.hasPrefix(artifactScheme) || source.hasPrefix("file:") || !source.contains("://") {
            // Server-side locations must lie below the run's artifact root.
            guard let runID, let info = try await store.runInfo(id: runID), Self.isWithin(source, info.artifactURI) else { throw invalid() }
        }
    }

    static func isWithin(_ source: String, _ root: String) -> Bool {
        let s = source.hasSuffix("/") ? String(source.dropLast()) : source
        let r = root.hasSuffix("/") ? String(root.dropLast()) : root
        guard s == r || s.hasPrefix(r + "/") else { return false }
        return !s.dropFirst(r.count).split(separator: "/").contains("..")
    }

    public func modelVersion(name: String?, version: String?, workspace: String = Workspace.defaultName) async throws -> ModelVersion {
        try Validate.modelName(name)
        guard let version, !version.isEmpty else { throw LoomError.invalidParameter("Missing value for required parameter 'version'.") }
        _ = try Validate.version(version)
        guard let mv = try await store.modelVersion(name: name!, version: version, workspace: workspace) else {
            throw LoomError.notFound("Model Version (name=\(name!), version=\(version)) not found")
        }
        return mv
    }

    public func updateModelVersion(name: String?, version: String?, description: String?, workspace: String = Workspace.defaultName) async throws -> ModelVersion {
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        return try await store.updateModelVersion(name: mv.name, version: mv.version, workspace: workspace, description: description, time: now)
    }

    public func transitionStage(name: String?, version: String?, stage: String?, archiveExisting: Bool, workspace: String = Workspace.defaultName) async throws -> ModelVersion {
        guard let stage, let target = ModelStage(caseInsensitive: stage) else {
            throw LoomError.invalidParameter("Invalid Model Version stage: \(stage ?? ""). Value must be one of None, Staging, Production, Archived.")
        }
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        return try await store.transitionModelVersionStage(name: mv.name, version: mv.version, workspace: workspace, stage: target, archiveExisting: archiveExisting, time: now)
    }

    public func deleteModelVersion(name: String?, version: String?, workspace: String = Workspace.defaultName) async throws {
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        try await store.deleteModelVersion(name: mv.name, version: mv.version, workspace: workspace)
    }

    public func searchModelVersions(filter: String?, maxResults: Int?, orderBy: [String], pageToken: String?, workspace: String = Workspace.defaultName, prompts: Bool? = nil) async throws -> Page<ModelVersion> {
        let parsed = try SearchFilterParser.parse(filter, grammar: .modelVersions)
        let (clauses, wantsPrompts) = Self.promptScope(parsed)
        let orders = try orderBy.map { term throws(LoomError) in try SearchFilterParser.parseOrder(term, grammar: .modelVersions) }
        let limit = try Self.pageSize(maxResults, default: 10_000, max: Limits.maxModelVersionsPerSearch)
        return try await store.searchModelVersions(EntitySearch(
            filter: clauses, orderBy: orders, maxResults: limit, offset: try PageToken.decode(pageToken), workspace: workspace,
            prompts: prompts ?? wantsPrompts))
    }

    /// Where a client downloads a version's files from.
    public func downloadURI(name: String?, version: String?, workspace: String = Workspace.defaultName) async throws -> String {
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        if let loc = mv.storageLocation { return loc }
        if let modelID = mv.modelID, let lm = try await store.loggedModel(id: modelID) { return lm.artifactLocation }
        if mv.source.hasPrefix("models:/"), let lm = try await store.loggedModel(id: String(mv.source.dropFirst("models:/".count))) {
            return lm.artifactLocation
        }
        if mv.source.hasPrefix("runs:/") {
            let rest = mv.source.dropFirst("runs:/".count)
            let parts = rest.split(separator: "/", maxSplits: 1)
            if let runID = parts.first, let info = try await store.runInfo(id: String(runID)) {
                return parts.count > 1 ? "\(info.artifactURI)/\(parts[1])" : info.artifactURI
            }
        }
        return mv.source
    }

    public func setModelVersionTag(name: String?, version: String?, key: String, value: String, workspace: String = Workspace.defaultName) async throws {
        let tag = Tag(key: key, value: value)
        try Validate.registryTag(tag)
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        try await store.setModelVersionTag(name: mv.name, version: mv.version, workspace: workspace, tag: tag)
    }

    public func deleteModelVersionTag(name: String?, version: String?, key: String, workspace: String = Workspace.defaultName) async throws {
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        try await store.deleteModelVersionTag(name: mv.name, version: mv.version, workspace: workspace, key: key)
    }

    public func setAlias(name: String?, alias: String?, version: String?, workspace: String = Workspace.defaultName) async throws {
        try Validate.modelName(name)
        try Validate.alias(alias)
        try Validate.aliasNotReserved(alias!)
        let mv = try await modelVersion(name: name, version: version, workspace: workspace)
        try await store.setAlias(name: mv.name, workspace: workspace, alias: alias!, version: mv.version)
    }

    public func deleteAlias(name: String?, alias: String?, workspace: String = Workspace.defaultName) async throws {
        try Validate.modelName(name)
        try Validate.alias(alias)
        _ = try await registeredModel(name: name, workspace: workspace)
        try await store.deleteAlias(name: name!, workspace: workspace, alias: alias!)
    }

    public func modelVersion(name: String?, alias: String?, workspace: String = Workspace.defaultName) async throws -> ModelVersion {
        try Validate.modelName(name)
        try Validate.alias(alias)
        let model = try await registeredModel(name: name, workspace: workspace)
        if alias!.lowercased() == "latest" {
            // The reserved alias resolves to the highest live version.
            let versions = try await store.searchModelVersions(EntitySearch(
                filter: [SearchClause(entity: .attribute, key: "name", comparator: .equal, value: .string(model.name))],
                orderBy: [SearchOrder(entity: .attribute, key: "version_number", ascending: false)], maxResults: 1, workspace: workspace))
            guard let newest = versions.items.first else { throw LoomError.invalidParameter("Registered model alias \(alias!) not found.") }
            return newest
        }
        guard let mv = try await store.modelVersion(name: name!, alias: alias!, workspace: workspace) else {
            throw LoomError.invalidParameter("Registered model alias \(alias!) not found.")
        }
        return mv
    }
}
