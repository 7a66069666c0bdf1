import HTTPTypes
import Hummingbird
import Metrics
import Prometheus
import Synchronization

/// Prometheus metrics: one registry for the process, bootstrapped once.
public enum LoomMetrics {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The process-wide registry, bootstrapping swift-metrics on first use.
    public static var registry: PrometheusCollectorRegistry {
        state.withLock { current in
            if let r = current { return r }
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.nameAndLabelSanitizer = { name, labels in
                (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
            }
            factory.valueHistogramBuckets["loom_store_write_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
            factory.durationHistogramBuckets["loom_http_request_duration_seconds"] = [
                .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500), .seconds(1), .seconds(5),
            ]
            MetricsSystem.bootstrap(factory)
            current = registry
            return registry
        }
    }

    static func sanitize(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" ? $0 : "_" })
    }

    /// Bootstraps swift-metrics with the Prometheus backend (idempotent). Call before creating
    /// anything that records metrics.
    public static func bootstrap() {
        _ = registry
    }

    /// The exposition text for `/metrics`.
    public static func exposition() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Counts requests and times them per route template (not per raw path, to bound cardinality).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = LoomRequestContext

    private struct Key: Hashable {
        let method: HTTPRequest.Method
        let route: String
        let status: Int
    }

    private final class Cache: Sendable {
        let handlers = Mutex<[Key: (Metrics.Counter, Metrics.Timer)]>([:])
    }
    /// One cache for the process: the invocation fast path records into it too.
    private static let cache = Cache()

    init() {
        _ = LoomMetrics.registry
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            record(request, context, status: 500, start: start)
            throw error
        }
        record(request, context, status: Int(response.status.code), start: start)
        return response
    }

    private func record(_ request: Request, _ context: Context, status: Int, start: ContinuousClock.Instant) {
        Self.record(method: request.method, route: context.endpointPath ?? "unmatched", status: status, start: start)
    }

    static func record(method: HTTPRequest.Method, route: String, status: Int, start: ContinuousClock.Instant) {
        let key = Key(method: method, route: route, status: status)
        let (counter, timer) = cache.handlers.withLock { handlers in
            if let h = handlers[key] { return h }
            let method = method.rawValue
            let h = (
                Metrics.Counter(label: "loom_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))]),
                Metrics.Timer(label: "loom_http_request_duration_seconds", dimensions: [("method", method), ("route", route)])
            )
            handlers[key] = h
            return h
        }
        counter.increment()
        let elapsed = ContinuousClock.now - start
        let (s, atto) = elapsed.components
        timer.recordNanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
