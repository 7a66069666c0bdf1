/// A grounding index (docs/indexes.md): a named spec of sources, chunking and embeddings
/// applied to a workspace from YAML (`kind: index`); `LoomGenAI.IndexSpec` reads the text.
public struct GroundingIndex: Sendable, Codable, Hashable {
    public var workspace: String
    public var name: String
    public var specText: String
    /// Bumped each time a changed spec is applied.
    public var version: Int64
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis

    public init(
        workspace: String = Workspace.defaultName, name: String, specText: String, version: Int64 = 1, createdBy: String, creationTime: Millis,
        lastUpdatedTime: Millis? = nil
    ) {
        self.workspace = workspace
        self.name = name
        self.specText = specText
        self.version = version
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
    }
}

/// One immutable build of a grounding index: its documents (by digest), its chunks, and the
/// BM25 and vector indexes over them, kept in the artifact store at `artifactPath`.
public struct IndexVersion: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable, Hashable {
        case ready, failed
    }

    public var workspace: String
    public var index: String
    /// 1, 2, ... in the order built (set by the store).
    public var version: Int64
    /// The spec version it was built from.
    public var specVersion: Int64
    public var status: Status
    public var createdBy: String
    public var creationTime: Millis
    public var documents: Int64
    public var chunks: Int64
    /// `sha256:...` of its documents' sources and digests: two versions of the same content share it.
    public var contentDigest: String
    /// Where its files are, relative to the artifact root (empty for a failed build).
    public var artifactPath: String
    /// JSON: chunking, embeddings, build statistics (time, reused and parsed documents, vector
    /// recall@10 measured against exact search) and the documents that could not be read.
    public var details: String
    /// The newest modification time among its documents.
    public var newestSourceTime: Millis?
    public var error: String?

    public init(
        workspace: String, index: String, version: Int64 = 0, specVersion: Int64, status: Status, createdBy: String, creationTime: Millis,
        documents: Int64 = 0, chunks: Int64 = 0, contentDigest: String = "", artifactPath: String = "", details: String = "{}",
        newestSourceTime: Millis? = nil, error: String? = nil
    ) {
        self.workspace = workspace
        self.index = index
        self.version = version
        self.specVersion = specVersion
        self.status = status
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.documents = documents
        self.chunks = chunks
        self.contentDigest = contentDigest
        self.artifactPath = artifactPath
        self.details = details
        self.newestSourceTime = newestSourceTime
        self.error = error
    }
}

/// A document as one index version holds it: the lineage from the version to its sources.
public struct IndexDocument: Sendable, Codable, Hashable {
    /// The path under the source folder (`file.jsonl#12` for a JSON Lines record).
    public var source: String
    /// `sha256:...` of the source file's bytes.
    public var digest: String
    public var title: String
    public var metadata: [String: String]
    public var chunks: Int64
    public var modifiedTime: Millis

    public init(source: String, digest: String, title: String, metadata: [String: String] = [:], chunks: Int64, modifiedTime: Millis) {
        self.source = source
        self.digest = digest
        self.title = title
        self.metadata = metadata
        self.chunks = chunks
        self.modifiedTime = modifiedTime
    }
}
