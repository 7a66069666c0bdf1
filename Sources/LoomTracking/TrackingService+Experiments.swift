import LoomCore
import LoomStore

extension TrackingService {
    public func createExperiment(name: String?, artifactLocation: String?, tags: [Tag], workspace: String = Workspace.defaultName) async throws -> Experiment {
        try Validate.experimentName(name)
        for t in tags { try Validate.experimentTag(t) }
        if let loc = artifactLocation, loc.hasPrefix("runs:") {
            throw LoomError.invalidParameter("Artifact location cannot be a runs:/ URI. Given: '\(loc)'")
        }
        let location = (artifactLocation?.isEmpty ?? true) ? nil : artifactLocation
        if let location { _ = try artifactPath(forURI: location) }
        let scheme = artifactScheme
        return try await store.createExperiment(
            name: name!, workspace: workspace, artifactLocation: location,
            defaultArtifactLocation: { id in "\(scheme)/\(id)" }, tags: tags, time: now)
    }

    public func experiment(id: String) async throws -> Experiment {
        guard Int64(id) != nil else {
            throw LoomError.invalidParameter("Invalid experiment ID '\(id)'. Experiment ID must be a valid integer.")
        }
        guard let e = try await store.experiment(id: id) else {
            throw LoomError.notFound("No Experiment with id=\(id) exists")
        }
        return e
    }

    public func experiment(named name: String, workspace: String = Workspace.defaultName) async throws -> Experiment {
        guard let e = try await store.experiment(named: name, workspace: workspace) else {
            throw LoomError.notFound("Could not find experiment with name '\(name)'")
        }
        return e
    }

    public func searchExperiments(filter: String?, orderBy: [String], viewType: ViewType, maxResults: Int?, pageToken: String?, workspace: String? = Workspace.defaultName) async throws -> Page<Experiment> {
        let clauses = try SearchFilterParser.parse(filter, grammar: .experiments)
        let orders = try orderBy.map { term throws(LoomError) in try SearchFilterParser.parseOrder(term, grammar: .experiments) }
        let limit = try Self.pageSize(maxResults, default: 1000, max: Limits.maxExperimentsPerSearch)
        let offset = try PageToken.decode(pageToken)
        return try await store.searchExperiments(EntitySearch(filter: clauses, orderBy: orders, viewType: viewType, maxResults: limit, offset: offset, workspace: workspace))
    }

    public func renameExperiment(id: String, newName: String?) async throws {
        try Validate.experimentName(newName)
        _ = try await experiment(id: id)
        try await store.renameExperiment(id: id, to: newName!, time: now)
    }

    public func deleteExperiment(id: String) async throws {
        _ = try await experiment(id: id)
        try await store.setExperimentLifecycle(id: id, stage: .deleted, time: now)
    }

    public func restoreExperiment(id: String) async throws {
        _ = try await experiment(id: id)
        try await store.setExperimentLifecycle(id: id, stage: .active, time: now)
    }

    public func setExperimentTag(id: String, key: String, value: String) async throws {
        let tag = Tag(key: key, value: value)
        try Validate.experimentTag(tag)
        try await store.setExperimentTag(id: id, tag: tag)
    }

    public func deleteExperimentTag(id: String, key: String) async throws {
        try await store.deleteExperimentTag(id: id, key: key)
    }

    /// Validates a page size: nil → `default`, must be 1...max.
    static func pageSize(_ requested: Int?, default def: Int, max: Int) throws(LoomError) -> Int {
        guard let requested else { return def }
        guard requested > 0 else {
            throw .invalidParameter("Invalid value \(requested) for parameter 'max_results' supplied. It must be a positive integer")
        }
        guard requested <= max else {
            throw .invalidParameter("Invalid value \(requested) for parameter 'max_results' supplied. It must be at most \(max), but got value \(requested)")
        }
        return requested
    }
}
