import Hummingbird
import LoomCore
import LoomStore
import LoomTracking

/// The MLflow-compatible REST API under `/api/2.0/mlflow`, which the official `mlflow` client
/// calls unchanged.
struct MLflowController {
    typealias Context = LoomRequestContext
    let services: ServerServices
    var tracking: TrackingService { services.tracking }
    var auth: Authorization { Authorization(access: services.access, tracking: services.tracking) }

    static let prefix = "/api/2.0/mlflow"

    func addRoutes(to routes: Routes) {
        addExperimentRoutes(to: routes)
        addRunRoutes(to: routes)
        addLoggedModelRoutes(to: routes)
        addRegistryRoutes(to: routes)
    }

    /// GET parameters come from the query string; other methods send a JSON body
    /// (DELETE may use either).
    static func input(_ request: Request, _ context: Context) async throws -> JSONBody {
        if request.method == .get { return request.query.asBody }
        let body = try await request.jsonBody(context: context)
        if body.fields.isEmpty, request.uri.query != nil { return request.query.asBody }
        return body
    }

    /// `run_id`, falling back to the deprecated `run_uuid`.
    static func runID(_ body: JSONBody) throws(LoomError) -> String {
        if let id = try body.string("run_id"), !id.isEmpty { return id }
        if let id = try body.string("run_uuid"), !id.isEmpty { return id }
        throw .invalidParameter("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.")
    }

    static func viewType(_ body: JSONBody, _ key: String) throws(LoomError) -> ViewType {
        guard let raw = try body.idString(key), !raw.isEmpty else { return .activeOnly }
        guard let v = ViewType(mlflowName: raw) else {
            throw .invalidParameter("Invalid value '\(raw)' for parameter '\(key)': expected ACTIVE_ONLY, DELETED_ONLY or ALL")
        }
        return v
    }
}

/// Small JSON envelope types shared by the MLflow handlers.
struct Envelope<T: Encodable & Sendable>: Encodable, Sendable {
    let key: String
    let value: T
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicKey.self)
        try c.encode(value, forKey: DynamicKey(key))
    }
}

/// A list plus `next_page_token`, as MLflow's search responses are shaped.
struct PagedEnvelope<T: Encodable & Sendable>: Encodable, Sendable {
    let key: String
    let items: [T]
    let nextPageToken: String?
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicKey.self)
        if !items.isEmpty { try c.encode(items, forKey: DynamicKey(key)) }
        if let nextPageToken { try c.encode(nextPageToken, forKey: DynamicKey("next_page_token")) }
    }
}

struct DynamicKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
