import LoomArtifacts
import LoomCore
import LoomGenAI
import LoomStore
import LoomServing
import LoomTracking
import Logging

/// Everything the HTTP layer calls into, built once at start.
public struct ServerServices: Sendable {
    public let tracking: TrackingService
    public let access: AccessService
    public let configuration: ServerConfiguration
    public let logger: Logger

    /// Runs pipeline runs (nil: this server does not; submitting one is refused).
    public let pipelines: PipelineService?

    /// Online endpoints: their deployments' runtimes and the table invocations are routed by.
    public let endpoints: EndpointService
    public var serving: ServingService { endpoints.serving }
    /// Monitors: passes on demand and on their schedules.
    public let monitors: MonitorService
    /// The LLM gateway and its management.
    public let gateway: GatewayService

    public init(
        tracking: TrackingService, access: AccessService, configuration: ServerConfiguration, logger: Logger, pipelines: PipelineService? = nil,
        endpoints: EndpointService? = nil, monitors: MonitorService? = nil, gateway: GatewayService? = nil
    ) {
        self.tracking = tracking
        self.access = access
        self.configuration = configuration
        self.logger = logger
        self.pipelines = pipelines
        self.endpoints = endpoints ?? EndpointService(
            tracking: tracking, logRoot: configuration.dataDirectory.map { "\($0)/endpoints" }, logger: logger)
        self.monitors = monitors ?? MonitorService(tracking: tracking, logger: logger, pipelines: pipelines, endpoints: self.endpoints)
        self.gateway = gateway ?? GatewayService(tracking: tracking, logger: logger)
        pipelines?.use(evaluations: self.gateway)
        self.endpoints.serving.use(flows: self.gateway)
        self.monitors.use(scorer: self.gateway.evaluations)
    }

    public var store: any MetadataStore { tracking.store }
    public var artifacts: any ArtifactStore { tracking.artifacts }
}

/// Settings of `loom server` (from flags, the environment and defaults).
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Whether requests must authenticate.
    public var authEnabled: Bool
    /// Largest artifact upload accepted, in bytes (nil: unlimited).
    public var maxArtifactBytes: Int64?
    /// Where the data directory is (for display).
    public var dataDirectory: String?
    public var version: String
    /// How long a worker's lease on a step lasts without a renewal, in seconds.
    public var workerLeaseSeconds: Double = 30

    public init(host: String = "127.0.0.1", port: Int = 5000, authEnabled: Bool = false, maxArtifactBytes: Int64? = nil, dataDirectory: String? = nil, version: String = LoomVersion.current) {
        self.host = host
        self.port = port
        self.authEnabled = authEnabled
        self.maxArtifactBytes = maxArtifactBytes
        self.dataDirectory = dataDirectory
        self.version = version
    }
}

/// The version of this build.
public enum LoomVersion {
    public static let current = "0.1.0"
}
