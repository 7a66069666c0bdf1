import AsyncHTTPClient
import LoomArtifacts
import LoomCore
import LoomModels
import LoomServing
import NIOCore
import LoomTracking
import Logging
import ServiceLifecycle

/// Keeps this replica's endpoints in step with the store (a change made through another
/// replica applies within `refreshSeconds`), and on shutdown drains and stops the model
/// servers it runs.
public final class EndpointService: Service, Sendable {
    public let serving: ServingService
    /// Drives the rollouts this replica holds the lease of.
    public let rollouts: RolloutController
    let refreshSeconds: Double
    /// A client of the service's own, shut down with it (nil: the shared one).
    let client: HTTPClient?

    /// `ownClient`: a dedicated HTTP client for forwarding (more connections per upstream than
    /// the shared one), shut down when the service stops; only when the service runs.
    public init(tracking: TrackingService, logRoot: String?, logger: Logger, refreshSeconds: Double = 2, ownClient: Bool = false) {
        var client: HTTPClient?
        if ownClient {
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            configuration.decompression = .disabled
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
        self.client = client
        self.refreshSeconds = refreshSeconds
        let collector = RequestCollector(sink: ArtifactCollectionSink(artifacts: tracking.artifacts), logger: logger)
        self.serving = ServingService(
            store: tracking.store, models: RegistryModels(tracking: tracking), client: client ?? HTTPClient.shared, collector: collector,
            logRoot: logRoot, logger: logger)
        self.rollouts = RolloutController(serving: serving, logger: logger)
    }

    public func run() async throws {
        let serving = self.serving
        let seconds = refreshSeconds
        let collecting = Task { await serving.collector?.run() }
        let rollouts = self.rollouts
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        await serving.refresh()
                        try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                    }
                }
                group.addTask {
                    // Rollouts are looked at every second, and when a gate judgement is due.
                    try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                    while !Task.isCancelled {
                        await rollouts.tick()
                        // Sooner when a gate judgement is due: a rollback comes within its interval.
                        try? await Task.sleep(for: rollouts.nextLook())
                    }
                }
            }
        }
        await serving.shutdown()
        // What was collected before the stop is written before the store closes.
        serving.collector?.finish()
        await collecting.value
        try? await client?.shutdown()
    }
}

/// Collected requests and labels are files in the artifact store.
struct ArtifactCollectionSink: CollectionSink {
    let artifacts: any ArtifactStore

    func store(_ path: String, _ bytes: ByteBuffer) async throws {
        _ = try await artifacts.write(try ArtifactPath(path), bytes: bytes.readableBytesView)
    }
}

/// Deployments' models come from the registry.
struct RegistryModels: ModelSource {
    let tracking: TrackingService

    func registeredVersion(_ reference: String, workspace: String) async throws -> (name: String, version: String) {
        guard reference.hasPrefix("models:/") else {
            throw LoomError.invalidParameter("A deployment's model is models:/NAME/VERSION or models:/NAME@ALIAS, not '\(reference)'")
        }
        let rest = String(reference.dropFirst("models:/".count))
        let version: ModelVersion
        if let at = rest.firstIndex(of: "@") {
            version = try await tracking.modelVersion(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]), workspace: workspace)
        } else {
            let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw LoomError.invalidParameter("A deployment's model is models:/NAME/VERSION or models:/NAME@ALIAS, not '\(reference)'")
            }
            version = try await tracking.modelVersion(name: parts[0], version: parts[1], workspace: workspace)
        }
        return (version.name, version.version)
    }

    func runMetric(modelVersion: String, metric: String, workspace: String) async throws -> Double? {
        guard let slash = modelVersion.lastIndex(of: "/") else { return nil }
        let v = try await tracking.modelVersion(
            name: String(modelVersion[..<slash]), version: String(modelVersion[modelVersion.index(after: slash)...]), workspace: workspace)
        guard let runID = v.runID else { return nil }
        return try await tracking.run(id: runID).metrics.first { $0.key == metric }?.value
    }

    func validationRows(dataset: String, target: String?, limit: Int, workspace: String) async throws -> (
        columns: [String], rows: [[JSONValue]], truth: [String]?
    ) {
        let source = try DataSource.parse(dataset)
        guard case .version = source else { throw LoomError.invalidParameter("validation.dataset must be a registered dataset (NAME or NAME@VERSION)") }
        let (files, _, _) = try await tracking.files(of: source, workspace: workspace)
        let (frame, _) = try Frame.read(files)
        let n = min(limit, frame.rowCount)
        var truthColumn: Frame.Column?
        if let target {
            guard let t = frame.index(of: target) else { throw LoomError.invalidParameter("Dataset \(dataset) has no column \(target)") }
            truthColumn = frame.columns[t]
        }
        func value(_ column: Frame.Column, _ row: Int) -> JSONValue {
            switch column {
            case .numbers(let v): return v[row].isNaN ? .null : .number(v[row], raw: nil)
            case .categories(let codes, let levels): return codes[row] < 0 ? .null : .string(levels[Int(codes[row])])
            }
        }
        let keep = frame.names.indices.filter { frame.names[$0] != target }
        let rows = (0..<n).map { r in keep.map { value(frame.columns[$0], r) } }
        let truth = truthColumn.map { column in
            (0..<n).map { r -> String in
                switch value(column, r) {
                case .number(let d, _): return Frame.text(of: d)
                case .string(let s): return s
                default: return ""
                }
            }
        }
        return (keep.map { frame.names[$0] }, rows, truth)
    }

    func nativeModel(name: String, version: String, workspace: String) async throws -> LoomModel {
        let v = try await tracking.modelVersion(name: name, version: version, workspace: workspace)
        guard v.source.hasPrefix("runs:/") else {
            throw LoomError.invalidParameter(
                "Model \(name) version \(version) is not a Loom model (its source is \(v.source)): serve it with the process runtime (e.g. mlflow models serve)")
        }
        do {
            return try await tracking.loadModel(v.source)
        } catch let e as LoomError where e.code == .notFound {
            throw LoomError.invalidParameter(
                "Model \(name) version \(version) has no Loom model file at \(v.source): serve it with the process runtime (e.g. mlflow models serve)")
        }
    }
}
