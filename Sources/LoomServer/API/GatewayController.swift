import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import NIOCore

/// The OpenAI-compatible gateway (docs/gateway.md): `POST /v1/chat/completions` (streamed as
/// server-sent events when asked), `POST /v1/embeddings`, `GET /v1/models`. Every answer,
/// errors included, is in OpenAI's shape, so that the official clients work unchanged.
///
/// Callers authenticate with a gateway key (`Authorization: Bearer lgk_...`, scoped to a
/// workspace and routes); with `--auth`, a Loom user or token with the viewer role works too;
/// without auth, anyone may call (a key, when given, must still be valid).
struct GatewayController {
    typealias Context = LoomRequestContext
    let services: ServerServices

    static let traceParent = HTTPField.Name("traceparent")!

    /// The largest request body accepted.
    static let maxBodyBytes = 16 << 20

    func addRoutes(to routes: Routes) {
        let gateway = services.gateway.gateway
        let authorization = Authorization(access: services.access, tracking: services.tracking)
        routes.post("/v1/chat/completions") { request, context in
            await Self.answer(request, context, gateway, authorization) { body, caller throws(GatewayError) in try await gateway.chat(body, caller: caller) }
        }
        routes.post("/v1/embeddings") { request, context in
            await Self.answer(request, context, gateway, authorization) { body, caller throws(GatewayError) in try await gateway.embeddings(body, caller: caller) }
        }
        routes.get("/v1/models") { request, context in
            do {
                let caller = try await Self.caller(request, context, gateway, authorization)
                let data = gateway.models(for: caller).map(Self.model)
                return Self.json(JSONValue.object(["object": .string("list"), "data": .array(data)]).jsonBytes)
            } catch {
                return Self.errorResponse(error)
            }
        }
        routes.get("/v1/models/:model") { request, context in
            do {
                let caller = try await Self.caller(request, context, gateway, authorization)
                let raw = try context.parameters.require("model")
                let name = raw.removingPercentEncoding ?? raw
                guard let m = gateway.models(for: caller).first(where: { $0.name == name }) else { throw GatewayError.modelNotFound(name) }
                return Self.json(Self.model(m).jsonBytes)
            } catch {
                return Self.errorResponse(error)
            }
        }
    }

    static func model(_ m: GatewayModel) -> JSONValue {
        .object(["id": .string(m.name), "object": .string("model"), "created": .int(m.created / 1000), "owned_by": .string("loom"), "task": .string(m.task.rawValue)])
    }

    static func answer(
        _ request: Request, _ context: Context, _ gateway: Gateway, _ authorization: Authorization,
        _ call: @Sendable ([UInt8], GatewayCaller) async throws(GatewayError) -> GatewayAnswer
    ) async -> Response {
        do {
            let caller = try await caller(request, context, gateway, authorization)
            let buffer: ByteBuffer
            do {
                buffer = try await request.body.collect(upTo: maxBodyBytes)
            } catch {
                throw GatewayError(status: 413, type: "invalid_request_error", message: "The request body is larger than \(maxBodyBytes >> 20) MiB.")
            }
            switch try await call(Array(buffer.readableBytesView), caller) {
            case .complete(let body, let headers):
                var response = json(body)
                for (name, value) in headers { if let n = HTTPField.Name(name) { response.headers[n] = value } }
                return response
            case .stream(let stream, let headers):
                var fields = HTTPFields()
                fields[.contentType] = "text/event-stream; charset=utf-8"
                fields[.cacheControl] = "no-cache"
                for (name, value) in headers { if let n = HTTPField.Name(name) { fields[n] = value } }
                return Response(status: .ok, headers: fields, body: ResponseBody { writer in
                    try await stream.relay { try await writer.write($0) }
                    try await writer.finish(nil)
                })
            }
        } catch {
            return errorResponse(error)
        }
    }

    /// Who calls: a gateway key's workspace, or the request's (with the server's auth when on).
    static func caller(_ request: Request, _ context: Context, _ gateway: Gateway, _ authorization: Authorization) async throws -> GatewayCaller {
        if let token = request.headers[.authorization].flatMap(AuthMiddleware.bearerToken), token.hasPrefix(GatewayKeys.prefix) {
            guard let key = gateway.key(secret: String(token)) else {
                throw GatewayError.unauthenticated("Incorrect API key provided: the gateway key is unknown or revoked.")
            }
            return GatewayCaller(workspace: key.workspace, key: key, traceParent: request.headers[Self.traceParent])
        }
        if context.authEnabled {
            if let refused = context.deferredAuthError {
                throw GatewayError.unauthenticated("\(refused.message). The gateway takes a gateway key (Authorization: Bearer lgk_...) or a Loom token.")
            }
            do {
                try await authorization.requireRole(context, .viewer)
            } catch let e as LoomError {
                throw GatewayError.from(e)
            }
        }
        return GatewayCaller(workspace: context.workspace, traceParent: request.headers[Self.traceParent])
    }

    static func json(_ body: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func errorResponse(_ error: any Error) -> Response {
        let e: GatewayError
        switch error {
        case let g as GatewayError: e = g
        case let l as LoomError: e = GatewayError.from(l)
        default: e = GatewayError(status: 500, type: "api_error", message: "The gateway failed: \(error)")
        }
        var response = json(e.body, status: HTTPResponse.Status(code: e.status))
        for (name, value) in e.headers { if let n = HTTPField.Name(name) { response.headers[n] = value } }
        return response
    }
}
