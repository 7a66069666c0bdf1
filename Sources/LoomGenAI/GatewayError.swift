import LoomCore

/// An error as OpenAI's API answers it (`{"error": {"message", "type", "param", "code"}}`), with
/// the HTTP status and headers (`retry-after`, `x-ratelimit-*`) that go with it. The official
/// clients raise their matching exception from the status.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var type: String
    public var code: String?
    public var message: String
    public var param: String?
    public var headers: [(String, String)]

    public init(status: Int, type: String, code: String? = nil, message: String, param: String? = nil, headers: [(String, String)] = []) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers
    }

    public var description: String { "\(status) \(type): \(message)" }

    public var body: [UInt8] {
        JSONValue.object(["error": .object([
            "message": .string(message), "type": .string(type), "param": param.map { .string($0) } ?? .null, "code": code.map { .string($0) } ?? .null,
        ])]).jsonBytes
    }

    public static func invalid(_ message: String, param: String? = nil) -> GatewayError {
        GatewayError(status: 400, type: "invalid_request_error", message: message, param: param)
    }

    public static func unauthenticated(_ message: String) -> GatewayError {
        GatewayError(status: 401, type: "authentication_error", code: "invalid_api_key", message: message)
    }

    public static func forbidden(_ message: String) -> GatewayError {
        GatewayError(status: 403, type: "permission_error", message: message)
    }

    public static func modelNotFound(_ model: String) -> GatewayError {
        GatewayError(status: 404, type: "invalid_request_error", code: "model_not_found", message: "The model `\(model)` does not exist: no gateway route has that name", param: "model")
    }

    /// A Loom error (from the store, auth) in OpenAI's shape.
    public static func from(_ error: LoomError) -> GatewayError {
        let type = switch error.code.httpStatusCode {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
        return GatewayError(status: error.code.httpStatusCode, type: type, message: error.message)
    }
}
