import Hummingbird
import Synchronization

/// The list of every route the server registers, kept so that a test can check it against
/// `openapi.yaml` (a route that is not documented fails the build).
public final class RouteCatalog: Sendable {
    public struct Entry: Sendable, Hashable {
        public let method: String
        /// OpenAPI-style path: `{param}` for parameters, `{path}` for catch-alls.
        public let path: String
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public var all: [Entry] { entries.withLock { $0 } }

    func record(_ method: HTTPRequest.Method, _ path: String) {
        let openAPIPath = path.split(separator: "/", omittingEmptySubsequences: false).map { seg -> String in
            if seg.hasPrefix(":") { return "{\(seg.dropFirst())}" }
            if seg == "**" { return "{path}" }
            return String(seg)
        }.joined(separator: "/")
        entries.withLock { $0.append(Entry(method: method.rawValue.lowercased(), path: openAPIPath)) }
    }
}

/// Registers routes on a Hummingbird router and records them in a ``RouteCatalog``.
struct Routes {
    typealias Context = LoomRequestContext
    typealias Handler = @Sendable (Request, Context) async throws -> Response

    let router: Router<Context>
    let catalog: RouteCatalog

    /// MLflow's routes are also mounted under `/ajax-api/2.0/...`, where MLflow's own UI calls them.
    static let mirroredPrefix = "/api/2.0/mlflow"
    static let mirrorPrefix = "/ajax-api/2.0/mlflow"

    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        catalog.record(method, path)
        router.on(RouterPath(path), method: method, use: handler)
        if path.hasPrefix(Self.mirroredPrefix + "/") {
            router.on(RouterPath(Self.mirrorPrefix + path.dropFirst(Self.mirroredPrefix.count)), method: method, use: handler)
        }
    }

    func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }
    func put(_ path: String, _ handler: @escaping Handler) { on(.put, path, handler) }
    func patch(_ path: String, _ handler: @escaping Handler) { on(.patch, path, handler) }
    func delete(_ path: String, _ handler: @escaping Handler) { on(.delete, path, handler) }
}
