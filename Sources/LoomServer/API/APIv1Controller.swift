import Foundation
import HTTPTypes
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking
import NIOCore

/// Loom's own REST API under `/api/v1`, described by `openapi.yaml`.
///
/// Resource-oriented JSON (snake_case), the same rules and permissions as the MLflow API.
struct APIv1Controller {
    typealias Context = LoomRequestContext
    let services: ServerServices
    var tracking: TrackingService { services.tracking }
    var auth: Authorization { Authorization(access: services.access, tracking: services.tracking) }

    static let prefix = "/api/v1"

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()

    static func respond<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static let noContent = Response(status: .noContent)

    /// `max_results` of a listing: 1 to 1000.
    static func limit(_ request: Request, default value: Int = 100) throws -> Int {
        let limit = try request.query.int("max_results") ?? value
        guard (1...1000).contains(limit) else { throw LoomError.invalidParameter("max_results must be between 1 and 1000") }
        return limit
    }

    struct Listing<T: Encodable & Sendable>: Encodable, Sendable {
        let items: [T]
        let nextPageToken: String?
    }

    func addRoutes(to routes: Routes) {
        addExperimentRoutes(to: routes)
        addRunRoutes(to: routes)
        addRegistryRoutes(to: routes)
        addAccessRoutes(to: routes)
        addDatasetRoutes(to: routes)
        addPipelineRoutes(to: routes)
        addLineageRoutes(to: routes)
        addWorkerRoutes(to: routes)
        addEndpointRoutes(to: routes)
        addMonitorRoutes(to: routes)
        addGatewayRoutes(to: routes)
        addPromptRoutes(to: routes)
        addIndexRoutes(to: routes)
        addFlowRoutes(to: routes)
        addEvaluationRoutes(to: routes)
    }

    static func body(_ request: Request, _ context: Context) async throws -> JSONBody {
        try await request.jsonBody(context: context)
    }

    static func param(_ context: Context, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else { throw LoomError.invalidParameter("Invalid percent-encoding in '\(name)'") }
        return decoded
    }

    /// `{"a": "1", "b": "2"}` or `[{"key","value"}]` as tags.
    static func tagMap(_ body: JSONBody, _ key: String) throws(LoomError) -> [Tag] {
        guard let value = body.fields[key] else { return [] }
        switch value {
        case .null: return []
        case .object(let o):
            return try o.keys.sorted().map { k throws(LoomError) -> Tag in
                switch o[k]! {
                case .string(let s): return Tag(key: k, value: s)
                case .number(let d, let raw): return Tag(key: k, value: raw ?? String(d))
                case .bool(let b): return Tag(key: k, value: b ? "true" : "false")
                default: throw .invalidParameter("Invalid value for '\(key).\(k)': expected a string")
                }
            }
        case .array: return try body.tags(key)
        default: throw .invalidParameter("Invalid value for '\(key)': expected an object of strings")
        }
    }

    static func viewType(_ query: QueryParameters) throws(LoomError) -> ViewType {
        guard let raw = query["view"], !raw.isEmpty else { return .activeOnly }
        switch raw.lowercased() {
        case "active", "active_only": return .activeOnly
        case "deleted", "deleted_only": return .deletedOnly
        case "all": return .all
        default: throw .invalidParameter("Invalid value '\(raw)' for 'view': expected active, deleted or all")
        }
    }
}
