/// The legacy deployment stage of a model version (MLflow keeps it; aliases supersede it).
public enum ModelStage: String, Sendable, Codable, Hashable, CaseIterable {
    case none = "None"
    case staging = "Staging"
    case production = "Production"
    case archived = "Archived"

    /// Case-insensitive parse, as MLflow accepts `production` or `Production`.
    public init?(caseInsensitive name: String) {
        guard let s = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
        self = s
    }
}

/// Whether a model version's files are in place.
public enum ModelVersionStatus: String, Sendable, Codable, Hashable {
    case pendingRegistration = "PENDING_REGISTRATION"
    case failedRegistration = "FAILED_REGISTRATION"
    case ready = "READY"
}

/// A named model in the registry.
public struct RegisteredModel: Sendable, Codable, Hashable {
    public var name: String
    public var creationTimestamp: Millis
    public var lastUpdatedTimestamp: Millis
    public var description: String?
    public var tags: [Tag]
    public var aliases: [ModelAlias]
    /// The latest version per stage, as MLflow's `latest_versions` reports it.
    public var latestVersions: [ModelVersion]
    public var workspace: String

    public init(
        name: String, creationTimestamp: Millis, lastUpdatedTimestamp: Millis, description: String? = nil,
        tags: [Tag] = [], aliases: [ModelAlias] = [], latestVersions: [ModelVersion] = [], workspace: String = Workspace.defaultName
    ) {
        self.name = name
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.description = description
        self.tags = tags
        self.aliases = aliases
        self.latestVersions = latestVersions
        self.workspace = workspace
    }
}

/// An alias (`champion`, `challenger`) pointing at one version of a registered model.
public struct ModelAlias: Sendable, Codable, Hashable {
    public var alias: String
    public var version: String
    public init(alias: String, version: String) {
        self.alias = alias
        self.version = version
    }
}

/// One version of a registered model.
public struct ModelVersion: Sendable, Codable, Hashable {
    public var name: String
    public var version: String
    public var creationTimestamp: Millis
    public var lastUpdatedTimestamp: Millis
    public var userID: String?
    public var currentStage: ModelStage
    public var description: String?
    public var source: String
    public var runID: String?
    public var runLink: String?
    public var status: ModelVersionStatus
    public var statusMessage: String?
    public var tags: [Tag]
    public var aliases: [String]
    /// The logged model this version was registered from (MLflow 3).
    public var modelID: String?
    public var storageLocation: String?

    public init(
        name: String, version: String, creationTimestamp: Millis, lastUpdatedTimestamp: Millis, userID: String? = nil,
        currentStage: ModelStage = .none, description: String? = nil, source: String, runID: String? = nil,
        runLink: String? = nil, status: ModelVersionStatus = .ready, statusMessage: String? = nil, tags: [Tag] = [],
        aliases: [String] = [], modelID: String? = nil, storageLocation: String? = nil
    ) {
        self.name = name
        self.version = version
        self.creationTimestamp = creationTimestamp
        self.lastUpdatedTimestamp = lastUpdatedTimestamp
        self.userID = userID
        self.currentStage = currentStage
        self.description = description
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.status = status
        self.statusMessage = statusMessage
        self.tags = tags
        self.aliases = aliases
        self.modelID = modelID
        self.storageLocation = storageLocation
    }
}
