import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomServing
import NIOCore

/// `POST /endpoints/NAME/invocations`: scoring requests, routed by the endpoint's traffic
/// policy (docs/deployment.md). Reads no endpoint from the database: it comes from the
/// in-memory table that `EndpointService` keeps in step with the store.
struct InvocationController {
    typealias Context = LoomRequestContext
    let services: ServerServices

    static let deploymentHeader = HTTPField.Name("loom-deployment")!
    static let correlationHeader = HTTPField.Name("loom-correlation-id")!

    func addRoutes(to routes: Routes) {
        let serving = services.serving
        let authorization = Authorization(access: services.access, tracking: services.tracking)
        routes.post("/endpoints/:name/invocations") { request, context in
            let name = try context.parameters.require("name")
            guard let live = serving.router.endpoint(workspace: context.workspace, name: name) else {
                if let refused = context.deferredAuthError { throw refused }  // who may not call learns nothing
                throw LoomError.notFound("No endpoint named \(name)")
            }
            if context.authEnabled || live.endpoint.auth == .key {
                try await Self.authenticate(request, context, live.endpoint, authorization)
            }
            let body = try await request.body.collect(upTo: live.endpoint.maxBodyBytes)
            let correlation = try Self.correlationID(request)
            let sticky = live.endpoint.stickyHeader.flatMap { HTTPField.Name($0) }.flatMap { request.headers[$0] }
            let routed: RoutedAnswer
            do {
                routed = try await live.invoke(
                    ServingRequest(body: body, contentType: request.headers[.contentType], correlationID: correlation),
                    target: request.headers[Self.deploymentHeader], stickyKey: sticky)
            } catch {
                // Errors carry the correlation id too, to find the request in collected records.
                var response = ErrorMiddleware.response(for: ErrorMiddleware.translate(error))
                response.headers[Self.correlationHeader] = correlation
                return response
            }
            var headers = HTTPFields()
            headers[.contentType] = routed.answer.contentType
            headers[Self.deploymentHeader] = routed.deployment
            headers[Self.correlationHeader] = correlation
            return Response(
                status: HTTPResponse.Status(code: routed.answer.status), headers: headers, body: .init(byteBuffer: routed.answer.body))
        }
    }

    /// Key auth: `Authorization: Bearer KEY` with the endpoint's key. Otherwise the server's
    /// auth (when on), and at least the viewer role in the workspace.
    static func authenticate(_ request: Request, _ context: Context, _ endpoint: Endpoint, _ authorization: Authorization) async throws {
        if endpoint.auth == .key {
            guard keyMatches(request.headers[.authorization], endpoint) else { throw LoomError.unauthenticated("Endpoint \(endpoint.name) needs its key: Authorization: Bearer KEY") }
            return
        }
        if let error = context.deferredAuthError { throw error }
        try await authorization.requireRole(context, .viewer)
    }

    /// Whether an `Authorization` header carries the endpoint's key (`Bearer KEY`; the scheme is
    /// case-insensitive, RFC 9110).
    static func keyMatches(_ header: String?, _ endpoint: Endpoint) -> Bool {
        guard let token = header.flatMap(AuthMiddleware.bearerToken) else { return false }
        return ServingService.matches(key: String(token), endpoint: endpoint)
    }

    /// The caller's `loom-correlation-id` (letters, digits, `-`, `_`, `.`, `:`; up to 128), or a new one.
    static func correlationID(_ request: Request) throws(LoomError) -> String {
        guard let given = request.headers[correlationHeader] else { return Identifiers.newHexID() }
        guard ServingService.isCorrelationID(given) else { throw LoomError.badRequest("loom-correlation-id must be 1 to 128 letters, digits, -, _, . or :") }
        return given
    }
}
