import Foundation
import Hummingbird
import LoomCore
import LoomStore
import NIOCore

/// Liveness, readiness, versions, the OpenAPI document and Prometheus metrics.
struct SystemController {
    typealias Context = LoomRequestContext
    let services: ServerServices
    /// The MLflow version whose client API this build serves.
    static let mlflowCompatibleVersion = "3.17.2"

    func addRoutes(to routes: Routes) {
        routes.get("/health") { _, _ in
            Self.text("OK")
        }
        routes.get("/ready") { _, _ in
            do {
                try await services.store.ping()
                return try JSONResponse.make(["status": "ready"])
            } catch {
                return ErrorMiddleware.response(for: .unavailable("The metadata store is not reachable"))
            }
        }
        routes.get("/version") { _, _ in
            Self.text(Self.mlflowCompatibleVersion)
        }
        routes.get("/api/3.0/mlflow/server-info") { _, _ in
            try JSONResponse.make(ServerInfo())
        }
        routes.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: LoomMetrics.exposition())))
        }
        routes.get("/openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }
    }

    struct ServerInfo: Encodable, Sendable {
        let store_type = "SqlStore"
        let workspaces_enabled = false
        let trace_archival_enabled = false
        let multipart_uploads_enabled = false
        let multipart_downloads_enabled = false
        let presigned_upload_run_id_supported = false
        let presigned_upload_model_id_supported = false
        let server = "loom"
        let version = LoomVersion.current
    }

    static func text(_ s: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: s)))
    }
}

/// The OpenAPI 3.1 description of the HTTP API, shipped inside the binary.
public enum OpenAPIDocument {
    public static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "openapi: 3.1.0\ninfo:\n  title: Loom\n  version: \(LoomVersion.current)\npaths: {}\n" }
        return text
    }()
}
