import Foundation
import Hummingbird
import LoomCore
import Logging
import NIOCore

extension LoomError.Code {
    /// The HTTP status MLflow uses for this code.
    public var httpStatus: HTTPResponse.Status { HTTPResponse.Status(code: httpStatusCode) }
}

/// Renders every error as MLflow's `{"error_code": ..., "message": ...}` with MLflow's status codes,
/// so that the official client raises the same exceptions. Nothing from user input becomes a 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = LoomRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let loom = Self.translate(error)
            if loom.code == .internalError {
                logger.error("request failed", metadata: ["path": "\(request.uri.path)", "method": "\(request.method)", "error": "\(String(reflecting: error))"])
            }
            var response = Self.response(for: loom)
            if loom.code == .unauthenticated {
                response.headers[.wwwAuthenticate] = "Basic realm=\"loom\""
            }
            return response
        }
    }

    static func translate(_ error: any Error) -> LoomError {
        if let e = error as? LoomError { return e }
        if let e = error as? HTTPError {
            switch e.status {
            case .contentTooLarge: return .payloadTooLarge("Request body is too large")
            case .notFound: return LoomError(.endpointNotFound, e.body ?? "Not found")
            case .methodNotAllowed: return LoomError(.endpointNotFound, "Method not allowed")
            case .unauthorized: return .unauthenticated(e.body ?? "Authentication required")
            case .forbidden: return .permissionDenied(e.body ?? "Permission denied")
            case .serviceUnavailable: return .unavailable(e.body ?? "Service unavailable")
            default:
                if (400..<500).contains(e.status.code) { return .badRequest(e.body ?? e.status.reasonPhrase) }
                return .internalError(e.body ?? "Internal error")
            }
        }
        if error is DecodingError { return .badRequest("Malformed request body") }
        if error is NIOTooManyBytesError { return .payloadTooLarge("Request body is too large") }
        if error is CancellationError { return .unavailable("The request was cancelled") }
        return .internalError("Internal server error")
    }

    static func response(for error: LoomError) -> Response {
        let body = error.jsonBody
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: error.code.httpStatus, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

}

/// A 404 in MLflow's shape for unknown routes.
struct NotFoundResponder: Sendable {
    static func response(path: String) -> Response {
        ErrorMiddleware.response(for: LoomError(.endpointNotFound, "No API endpoint at \(path)"))
    }
}
