import LoomCore
import LoomStore

extension TrackingService {
    public func createLoggedModel(experimentID: String?, name: String?, modelType: String?, sourceRunID: String?, params: [Param], tags: [Tag]) async throws -> LoggedModel {
        guard let experimentID, !experimentID.isEmpty else {
            throw LoomError.invalidParameter("Missing value for required parameter 'experiment_id'.")
        }
        let experiment = try await experiment(id: experimentID)
        let params = try params.enumerated().map { (i, p) throws(LoomError) in try Validate.param(p, path: "params[\(i)]") }
        let tags = try tags.enumerated().map { (i, t) throws(LoomError) in try Validate.runTag(t, path: "tags[\(i)]") }
        if let name, !name.isEmpty { try Validate.length(name, path: "name", limit: Limits.maxEntityKeyLength) }
        let id = Identifiers.newLoggedModelID()
        let t = now
        let model = LoggedModel(
            modelID: id, experimentID: experimentID, name: (name?.isEmpty == false ? name : nil) ?? Identifiers.randomRunName(),
            artifactLocation: "\(experiment.artifactLocation)/models/\(id)/artifacts", creationTimestamp: t, lastUpdatedTimestamp: t,
            status: .pending, modelType: modelType?.isEmpty == true ? nil : modelType,
            sourceRunID: sourceRunID?.isEmpty == true ? nil : sourceRunID, tags: tags, params: params)
        return try await store.createLoggedModel(model)
    }

    public func loggedModel(id: String) async throws -> LoggedModel {
        guard let m = try await store.loggedModel(id: id), m.lifecycleStage == .active else {
            throw LoomError.notFound("Logged model with ID '\(id)' not found.")
        }
        return m
    }

    public func finalizeLoggedModel(id: String, status: LoggedModelStatus) async throws -> LoggedModel {
        try await store.finalizeLoggedModel(id: id, status: status, time: now)
    }

    public func deleteLoggedModel(id: String) async throws {
        try await store.deleteLoggedModel(id: id, time: now)
    }

    public func searchLoggedModels(experimentIDs: [String], filter: String?, orderBy: [SearchOrder], maxResults: Int?, pageToken: String?) async throws -> Page<LoggedModel> {
        let clauses = try SearchFilterParser.parse(filter, grammar: .loggedModels)
        let limit = try Self.pageSize(maxResults, default: 100, max: Limits.maxLoggedModelsPerSearch)
        return try await store.searchLoggedModels(EntitySearch(filter: clauses, orderBy: orderBy, maxResults: limit, offset: try PageToken.decode(pageToken), experimentIDs: experimentIDs))
    }

    public func setLoggedModelTags(id: String, tags: [Tag]) async throws {
        let tags = try tags.enumerated().map { (i, t) throws(LoomError) in try Validate.runTag(t, path: "tags[\(i)]") }
        try await store.setLoggedModelTags(id: id, tags: tags)
    }

    public func deleteLoggedModelTag(id: String, key: String) async throws {
        try await store.deleteLoggedModelTag(id: id, key: key)
    }

    public func logLoggedModelParams(id: String, params: [Param]) async throws {
        let params = try params.enumerated().map { (i, p) throws(LoomError) in try Validate.param(p, path: "params[\(i)]") }
        try await store.logLoggedModelParams(id: id, params: params)
    }
}
