import Foundation
import Hummingbird
import HummingbirdTesting
import LoomCore
import LoomServer
import LoomStore
import LoomTracking
import NIOCore

/// Builds the real application over a fresh store and runs `body` against it in-process
/// (`live`: over HTTP on loopback, through the server's channel pipeline and its invocation
/// fast path; otherwise straight into the router).
public func withTestApp<T: Sendable>(
    _ backend: TestBackend = .sqlite, auth: Bool = false, maxArtifactBytes: Int64? = nil, live: Bool = false,
    _ body: @escaping @Sendable (any TestClientProtocol, ServerServices, RouteCatalog) async throws -> T
) async throws -> T {
    LoomMetrics.bootstrap()
    return try await withTestStore(backend) { store, tracking in
        let access = AccessService(store: store.store, bcryptCost: 4)
        let services = ServerServices(
            tracking: tracking, access: access,
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, authEnabled: auth, maxArtifactBytes: maxArtifactBytes),
            logger: TestStore.logger)
        let catalog = RouteCatalog()
        let router = buildRouter(services: services, catalog: catalog)
        let app = Application(
            router: router, server: httpServer(services: services), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: TestStore.logger)
        return try await app.test(live ? .live : .router) { client in
            try await body(client, services, catalog)
        }
    }
}

extension TestClientProtocol {
    /// Sends JSON and returns the status and parsed JSON object (empty when the body is not an object).
    public func json(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:]
    ) async throws -> (HTTPResponse.Status, [String: Any]) {
        var h = headers
        if body != nil { h[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: h, body: body.map { ByteBuffer(string: $0) }) { response in
            let data = Data(response.body.readableBytesView)
            let object = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [String: Any] ?? [:]
            return (response.status, object)
        }
    }
}
