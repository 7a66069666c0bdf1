/// One version of a named dataset, identified by the digest of its content: registering unchanged
/// content again yields the same version. Datasets that runs log through the MLflow client
/// (`mlflow.log_input`) are versions of the same kind, keyed by their name and digest.
public struct DatasetVersion: Sendable, Codable, Hashable {
    public var name: String
    public var version: Int64
    public var workspace: String
    /// `sha256:<hex>` for data Loom read; whatever digest MLflow logged otherwise.
    public var digest: String
    /// `csv`, `jsonl`, or `mlflow` for a dataset known only from an MLflow run's inputs.
    public var format: String
    /// Where the data came from: `local` (a path), `upload`, `operation` (made by a data
    /// operation), or MLflow's source type (`local`, `s3`, `delta_table`, ...).
    public var sourceType: String
    public var source: String
    /// The artifact path of Loom's copy of the files (nil when only referenced).
    public var storagePath: String?
    public var sizeBytes: Int64?
    public var rowCount: Int64?
    /// JSON: the columns and their types (Loom's), or MLflow's schema as logged.
    public var schema: String?
    /// JSON: Loom's column profile, or MLflow's profile as logged.
    public var profile: String?
    public var description: String?
    /// JSON: the inputs and operation that made it, when a data operation did.
    public var lineage: String?
    public var createdBy: String
    public var creationTime: Millis

    public init(
        name: String, version: Int64 = 0, workspace: String = Workspace.defaultName, digest: String, format: String,
        sourceType: String, source: String, storagePath: String? = nil, sizeBytes: Int64? = nil, rowCount: Int64? = nil,
        schema: String? = nil, profile: String? = nil, description: String? = nil, lineage: String? = nil,
        createdBy: String = "", creationTime: Millis = 0
    ) {
        self.name = name
        self.version = version
        self.workspace = workspace
        self.digest = digest
        self.format = format
        self.sourceType = sourceType
        self.source = source
        self.storagePath = storagePath
        self.sizeBytes = sizeBytes
        self.rowCount = rowCount
        self.schema = schema
        self.profile = profile
        self.description = description
        self.lineage = lineage
        self.createdBy = createdBy
        self.creationTime = creationTime
    }
}

/// A named dataset and its newest version.
public struct DatasetSummary: Sendable, Codable, Hashable {
    public var name: String
    public var workspace: String
    public var versions: Int64
    public var latest: DatasetVersion

    public init(name: String, workspace: String, versions: Int64, latest: DatasetVersion) {
        self.name = name
        self.workspace = workspace
        self.versions = versions
        self.latest = latest
    }
}

extension DatasetVersion {
    /// The digest a run logs for a version (MLflow keeps at most 36 characters): the first 32
    /// hex digits of its SHA-256. A logged dataset with such a digest is that version.
    public static func loggedDigest(_ digest: String) -> String {
        String((digest.hasPrefix("sha256:") ? digest.dropFirst(7) : Substring(digest)).prefix(32))
    }
}
