import LoomCore

/// A run search: experiments, AND-ed filter clauses, ordering and a page window.
public struct RunSearch: Sendable {
    public var experimentIDs: [String]
    public var filter: [SearchClause]
    public var orderBy: [SearchOrder]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int

    public init(experimentIDs: [String], filter: [SearchClause] = [], orderBy: [SearchOrder] = [], viewType: ViewType = .activeOnly, maxResults: Int = 1000, offset: Int = 0) {
        self.experimentIDs = experimentIDs
        self.filter = filter
        self.orderBy = orderBy
        self.viewType = viewType
        self.maxResults = maxResults
        self.offset = offset
    }
}

/// A search over experiments, registered models, model versions or logged models.
public struct EntitySearch: Sendable {
    public var filter: [SearchClause]
    public var orderBy: [SearchOrder]
    public var viewType: ViewType
    public var maxResults: Int
    public var offset: Int
    /// Restricts the search to these experiments (logged models) or this workspace.
    public var experimentIDs: [String]
    public var workspace: String?
    /// Registry searches: true → only prompts, false → only models, nil → both.
    public var prompts: Bool?

    public init(filter: [SearchClause] = [], orderBy: [SearchOrder] = [], viewType: ViewType = .activeOnly, maxResults: Int = 100, offset: Int = 0, experimentIDs: [String] = [], workspace: String? = nil, prompts: Bool? = nil) {
        self.prompts = prompts
        self.filter = filter
        self.orderBy = orderBy
        self.viewType = viewType
        self.maxResults = maxResults
        self.offset = offset
        self.experimentIDs = experimentIDs
        self.workspace = workspace
    }
}

/// A new run's fields.
public struct NewRun: Sendable {
    public var runID: String
    public var experimentID: String
    public var runName: String
    public var userID: String
    public var startTime: Millis
    public var tags: [Tag]
    public init(runID: String, experimentID: String, runName: String, userID: String, startTime: Millis, tags: [Tag]) {
        self.runID = runID
        self.experimentID = experimentID
        self.runName = runName
        self.userID = userID
        self.startTime = startTime
        self.tags = tags
    }
}

/// A new model version's fields.
public struct NewModelVersion: Sendable {
    public var name: String
    public var source: String
    public var runID: String?
    public var runLink: String?
    public var description: String?
    public var userID: String?
    public var tags: [Tag]
    public var modelID: String?
    public var time: Millis
    public init(name: String, source: String, runID: String?, runLink: String?, description: String?, userID: String?, tags: [Tag], modelID: String?, time: Millis) {
        self.name = name
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.description = description
        self.userID = userID
        self.tags = tags
        self.modelID = modelID
        self.time = time
    }
}

/// The bulk-interval history of one metric over several runs.
public struct MetricIntervalQuery: Sendable {
    public var runIDs: [String]
    public var key: String
    public var startStep: Int64?
    public var endStep: Int64?
    public var maxResults: Int
    public init(runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxResults: Int) {
        self.runIDs = runIDs
        self.key = key
        self.startStep = startStep
        self.endStep = endStep
        self.maxResults = maxResults
    }
}

/// An audit log query.
public struct AuditQuery: Sendable {
    public var actor: String?
    public var entityType: String?
    public var entityID: String?
    public var since: Millis?
    public var maxResults: Int
    public var offset: Int
    public init(actor: String? = nil, entityType: String? = nil, entityID: String? = nil, since: Millis? = nil, maxResults: Int = 100, offset: Int = 0) {
        self.actor = actor
        self.entityType = entityType
        self.entityID = entityID
        self.since = since
        self.maxResults = maxResults
        self.offset = offset
    }
}
