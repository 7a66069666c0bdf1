import LoomArtifacts
import LoomCore
import LoomStore
import Logging

/// The rules of tracking and the registry on top of a ``MetadataStore`` and an ``ArtifactStore``:
/// validation with MLflow's limits and messages, defaults (run names, artifact locations), and the
/// mapping between `mlflow-artifacts:/` URIs and the artifact store.
public struct TrackingService: Sendable {
    public let store: any MetadataStore
    public let artifacts: any ArtifactStore
    public let logger: Logger
    /// Prefix of default artifact locations, `mlflow-artifacts:` so that clients go through the server.
    public let artifactScheme = "mlflow-artifacts:"

    public init(store: any MetadataStore, artifacts: any ArtifactStore, logger: Logger) {
        self.store = store
        self.artifacts = artifacts
        self.logger = logger
    }

    var now: Millis { Clock.nowMillis() }

    /// The default location of an experiment's artifacts.
    public func defaultExperimentLocation(_ id: String) -> String { "\(artifactScheme)/\(id)" }

    /// Prepares the store: migrations and the Default experiment.
    public func prepare() async throws -> [Int] {
        let applied = try await store.upgrade()
        try await store.bootstrap(defaultArtifactLocation: defaultExperimentLocation("0"))
        return applied
    }

    // MARK: Artifact URIs

    /// The artifact-store path an `mlflow-artifacts:` URI points at, or nil for other schemes.
    public func artifactPath(forURI uri: String) throws(LoomError) -> ArtifactPath? {
        guard uri.hasPrefix(artifactScheme) else { return nil }
        var rest = Substring(uri.dropFirst(artifactScheme.count))
        if rest.hasPrefix("//") {
            // mlflow-artifacts://host:port/path
            rest = rest.dropFirst(2)
            if let slash = rest.firstIndex(of: "/") { rest = rest[slash...] } else { rest = "" }
        }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        return try ArtifactPath(String(rest), allowRoot: true)
    }

    /// Lists the directory `relativePath` below `root`, with entry paths relative to `root`.
    public func listArtifacts(root: ArtifactPath, relativePath: String) async throws -> [ArtifactEntry] {
        let relative = try ArtifactPath(relativePath, allowRoot: true)
        return try await artifacts.list(root.appending(relative)).map { e in
            ArtifactEntry(path: try ArtifactPath(e.path, allowRoot: true).relative(to: root).string, isDirectory: e.isDirectory, size: e.size)
        }
    }

    /// The artifact-store root of a run, if its artifacts are served by Loom.
    public func runArtifactRoot(_ run: RunInfo) throws(LoomError) -> ArtifactPath? {
        try artifactPath(forURI: run.artifactURI)
    }
}
