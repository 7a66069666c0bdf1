/// A domain error: a stable machine-readable code plus a human message.
///
/// Every layer above the store speaks this type; the HTTP layer maps the code to a status and to
/// MLflow's `error_code` strings in one place.
public struct LoomError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The stable category of an error.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidParameter = "INVALID_PARAMETER_VALUE"
            case badRequest = "BAD_REQUEST"
            case notFound = "RESOURCE_DOES_NOT_EXIST"
            case alreadyExists = "RESOURCE_ALREADY_EXISTS"
            case invalidState = "INVALID_STATE"
            case unauthenticated = "UNAUTHENTICATED"
            case permissionDenied = "PERMISSION_DENIED"
            case payloadTooLarge = "REQUEST_LIMIT_EXCEEDED"
            case unavailable = "TEMPORARILY_UNAVAILABLE"
            case endpointNotFound = "ENDPOINT_NOT_FOUND"
            case tooManyRequests = "TOO_MANY_REQUESTS"
            case timedOut = "DEADLINE_EXCEEDED"
            case badGateway = "BAD_GATEWAY"
            case internalError = "INTERNAL_ERROR"
        }
        private let base: Base

        /// A parameter is malformed or out of range.
        public static let invalidParameter = Code(base: .invalidParameter)
        /// The request as a whole cannot be understood (e.g. malformed JSON).
        public static let badRequest = Code(base: .badRequest)
        /// The named entity does not exist.
        public static let notFound = Code(base: .notFound)
        /// An entity with the same identity already exists.
        public static let alreadyExists = Code(base: .alreadyExists)
        /// The entity is not in a state that allows the operation (e.g. a deleted run).
        public static let invalidState = Code(base: .invalidState)
        /// No or invalid credentials.
        public static let unauthenticated = Code(base: .unauthenticated)
        /// Valid credentials without the needed permission.
        public static let permissionDenied = Code(base: .permissionDenied)
        /// The request body or a batch exceeds a limit.
        public static let payloadTooLarge = Code(base: .payloadTooLarge)
        /// A dependency (the database) is unavailable; retrying later may succeed.
        public static let unavailable = Code(base: .unavailable)
        /// No route matches.
        public static let endpointNotFound = Code(base: .endpointNotFound)
        /// Too many requests at once: shed rather than queued (429).
        public static let tooManyRequests = Code(base: .tooManyRequests)
        /// An upstream (a model server) did not answer in time (504).
        public static let timedOut = Code(base: .timedOut)
        /// An upstream could not be reached or answered with something unusable (502).
        public static let badGateway = Code(base: .badGateway)
        /// A bug or an unexpected failure.
        public static let internalError = Code(base: .internalError)

        /// The MLflow-compatible `error_code` string.
        public var mlflowCode: String { base.rawValue }
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func invalidParameter(_ message: String) -> LoomError { .init(.invalidParameter, message) }
    public static func badRequest(_ message: String) -> LoomError { .init(.badRequest, message) }
    public static func notFound(_ message: String) -> LoomError { .init(.notFound, message) }
    public static func alreadyExists(_ message: String) -> LoomError { .init(.alreadyExists, message) }
    public static func invalidState(_ message: String) -> LoomError { .init(.invalidState, message) }
    public static func unauthenticated(_ message: String) -> LoomError { .init(.unauthenticated, message) }
    public static func permissionDenied(_ message: String) -> LoomError { .init(.permissionDenied, message) }
    public static func payloadTooLarge(_ message: String) -> LoomError { .init(.payloadTooLarge, message) }
    public static func unavailable(_ message: String) -> LoomError { .init(.unavailable, message) }
    public static func internalError(_ message: String) -> LoomError { .init(.internalError, message) }
}

extension LoomError.Code {
    /// The HTTP status MLflow uses for this code (the server's error handler and the endpoint
    /// metrics both count by it).
    public var httpStatusCode: Int {
        switch self {
        case .invalidParameter, .badRequest, .alreadyExists, .invalidState: return 400
        case .notFound, .endpointNotFound: return 404
        case .unauthenticated: return 401
        case .permissionDenied: return 403
        case .payloadTooLarge: return 413
        case .tooManyRequests: return 429
        case .unavailable: return 503
        case .timedOut: return 504
        case .badGateway: return 502
        default: return 500
        }
    }
}

extension LoomError {
    /// MLflow's error body: `{"error_code": "...", "message": "..."}`.
    public var jsonBody: String {
        "{\"error_code\":\(JSONValue.quoted(code.mlflowCode)),\"message\":\(JSONValue.quoted(message))}"
    }
}
