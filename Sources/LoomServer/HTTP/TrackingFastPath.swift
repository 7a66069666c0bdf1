import HTTPTypes
import Logging
import LoomCore
import LoomTracking
import NIOCore

/// MLflow's two hottest calls, `POST /api/2.0/mlflow/runs/log-metric` and `log-batch`, answered
/// by the fast paths: read from the bytes by the relay (`InvocationRelay`) on connections that
/// carry only such calls, or after the HTTP decoder by `InvocationFastPath` on any other. The call
/// runs in a task on the connection's event loop (`EventLoopTaskExecutor`) and does what the
/// router's handler does (`MLflowController.addRunRoutes`): the same body reader (`FastBodies`),
/// the same `TrackingService.logMetric` / `logBatch` with the same audit context, the same error
/// bodies, the same request metrics. What it saves is Hummingbird's hops from the loop to a task
/// and back, and its middleware chain.
///
/// It takes a call only when the server's auth is off, the call is for the default workspace,
/// and its body is plain enough for `FastBodies`. Everything else (a body with escapes, a bad
/// one, a workspace header, auth on) goes to the router, which reads it with the general parser
/// and words any error exactly as without the fast paths.
struct TrackingCall: Sendable {
    enum Kind: Sendable {
        case metric, batch

        var path: String { self == .metric ? TrackingCall.metricPath : TrackingCall.batchPath }
    }

    enum Body: Sendable {
        case metric(FastBodies.MetricBody)
        case batch(FastBodies.BatchBody)
    }

    static let metricPath = MLflowController.prefix + "/runs/log-metric"
    static let batchPath = MLflowController.prefix + "/runs/log-batch"
    /// The router's limit on JSON bodies.
    static let maxBodyBytes = LoomRequestContext.maxJSONBodyBytes

    let kind: Kind
    let runID: String
    let body: Body

    /// The call `POST path` is, when the fast paths may take it (the path exactly, no query).
    static func kind(_ path: String?, _ shared: InvocationFastPath.Shared, header: (HTTPField.Name) -> String?) -> Kind? {
        guard shared.tracking != nil, !shared.authEnabled else { return nil }
        let kind: Kind
        switch path {
        case metricPath: kind = .metric
        case batchPath: kind = .batch
        default: return nil
        }
        if let workspace = header(AuthMiddleware.loomWorkspace) ?? header(AuthMiddleware.mlflowWorkspace), !workspace.isEmpty,
            workspace != Workspace.defaultName
        {
            return nil
        }
        return kind
    }

    /// The call in `raw`, or nil when the body is not plain enough for the fast reader.
    init?(_ kind: Kind, body raw: UnsafeRawBufferPointer) {
        switch kind {
        case .metric:
            guard let m = FastBodies.metric(raw), let id = m.runID else { return nil }
            (self.runID, self.body) = (id, .metric(m))
        case .batch:
            guard let b = FastBodies.batch(raw), let id = b.runID else { return nil }
            (self.runID, self.body) = (id, .batch(b))
        }
        self.kind = kind
    }

    /// Runs the call as the router's handler does, with the audit context the router's auth
    /// middleware sets when auth is off.
    func run(_ tracking: TrackingService) async throws {
        try await AuditContext.$current.withValue(kind == .metric ? Self.metricAudit : Self.batchAudit) {
            switch body {
            case .metric(let m):
                try await tracking.logMetric(runID: runID, metric: m.metric)
            case .batch(let b):
                try await tracking.logBatch(
                    runID: runID, metrics: b.metrics.map(\.metric), params: b.params.map { Param(key: $0.key, value: $0.value) },
                    tags: b.tags.map { Tag(key: $0.key, value: $0.value) })
            }
        }
    }

    /// Runs the call in a task on `loop`, then hands its answer to `respond` on the loop.
    func start(
        _ tracking: TrackingService, on executor: EventLoopTaskExecutor, logger: Logger?,
        respond: @escaping @Sendable (_ status: Int, _ body: ByteBuffer) -> Void
    ) {
        let loop = executor.loop
        Task(executorPreference: executor) {
            let status: Int
            let body: ByteBuffer
            do {
                try await run(tracking)
                (status, body) = (200, Self.emptyObject)
            } catch {
                let e = ErrorMiddleware.translate(error)
                if e.code == .internalError {
                    logger?.error("request failed", metadata: ["path": "\(kind.path)", "method": "POST", "error": "\(String(reflecting: error))"])
                }
                (status, body) = (e.code.httpStatusCode, ByteBuffer(string: e.jsonBody))
            }
            if loop.inEventLoop {
                respond(status, body)
            } else {
                loop.execute { respond(status, body) }
            }
        }
    }

    static let emptyObject = ByteBuffer(string: "{}")
    /// The audit context the router's auth middleware sets when auth is off, made once.
    static let metricAudit = AuditContext(actor: Actor.anonymous.username, workspace: Workspace.defaultName, origin: "POST \(metricPath)")
    static let batchAudit = AuditContext(actor: Actor.anonymous.username, workspace: Workspace.defaultName, origin: "POST \(batchPath)")
}
