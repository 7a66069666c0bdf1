import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomStore
import LoomServing
import LoomTracking
import Logging

/// Authenticates callers with HTTP Basic (username and password, or a token as the password)
/// or Bearer tokens, sets the actor and workspace on the context, and carries the actor into the
/// audit log. With auth off, every caller is the anonymous actor and nothing is checked.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = LoomRequestContext
    let access: AccessService
    let enabled: Bool
    let logger: Logger
    let workspaces: WorkspaceDirectory

    init(access: AccessService, enabled: Bool, logger: Logger) {
        self.access = access
        self.enabled = enabled
        self.logger = logger
        self.workspaces = WorkspaceDirectory(store: access.store)
    }

    static let loomWorkspace = HTTPField.Name("X-Loom-Workspace")!
    static let mlflowWorkspace = HTTPField.Name("X-MLflow-Workspace")!

    /// Paths anyone may call: liveness, readiness, the spec and the UI's static files.
    static let publicPaths: Set<String> = ["/health", "/ready", "/version", "/openapi.yaml", "/metrics", "/static/loom.css", "/static/loom.js"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.authEnabled = enabled
        if let ws = request.headers[Self.loomWorkspace] ?? request.headers[Self.mlflowWorkspace], !ws.isEmpty {
            context.workspace = ws
        }
        let path = request.uri.path
        if enabled && Self.isInvocation(path) {
            // The handler decides: an endpoint with a key of its own does not use the server's auth.
            if let token = request.headers[.authorization].flatMap(Self.bearerToken), token.hasPrefix(ServingService.keyPrefix) {
                context.deferredAuthError = .unauthenticated("Endpoint keys authenticate only endpoints with key auth")
            } else {
                do {
                    context.actor = try await authenticate(request)
                } catch let e as LoomError where e.code == .unauthenticated {
                    context.deferredAuthError = e
                }
            }
        } else if enabled && path.hasPrefix("/v1/") {
            // The gateway answers in OpenAI's shape and takes its own keys: it decides.
            if let token = request.headers[.authorization].flatMap(Self.bearerToken), token.hasPrefix(GatewayKeys.prefix) {
                context.actor = Actor(username: "gateway-key", isAdmin: false)
            } else {
                do {
                    context.actor = try await authenticate(request)
                } catch let e as LoomError where e.code == .unauthenticated {
                    context.deferredAuthError = e
                }
            }
        } else if enabled && !Self.publicPaths.contains(path) {
            do {
                context.actor = try await authenticate(request)
            } catch let e as LoomError where e.code == .unauthenticated {
                if isBrowserPage(request) {
                    // Browsers get the login prompt instead of a JSON error.
                    var headers = HTTPFields()
                    headers[.wwwAuthenticate] = "Basic realm=\"loom\""
                    headers[.contentType] = "text/html; charset=utf-8"
                    return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: .init(string: "<h1>401 Unauthorized</h1><p>Sign in to use Loom.</p>")))
                }
                try? await access.store.appendAudit([AuditEvent(
                    time: Clock.nowMillis(), actor: "unauthenticated", action: "auth_failed", entityType: "http", entityID: path,
                    workspace: context.workspace, status: 401, detail: "\(request.method) \(path)")])
                throw e
            }
        } else if enabled {
            context.actor = Actor(username: "anonymous", isAdmin: false)
        }
        if context.workspace != Workspace.defaultName {
            try await workspaces.require(context.workspace)
        }
        let audit = AuditContext(actor: context.actor.username, workspace: context.workspace, origin: "\(request.method) \(path)")
        do {
            return try await AuditContext.$current.withValue(audit) {
                try await next(request, context)
            }
        } catch let e as LoomError where e.code == .permissionDenied {
            try? await access.store.appendAudit([AuditEvent(
                time: Clock.nowMillis(), actor: context.actor.username, action: "permission_denied", entityType: "http", entityID: path,
                workspace: context.workspace, status: 403, detail: "\(request.method) \(path)")])
            throw e
        }
    }

    /// `/endpoints/NAME/invocations`.
    /// The token of an `Authorization: Bearer TOKEN` value: the scheme in any case (RFC 9110),
    /// spaces and tabs around the token trimmed; nil for any other scheme. Endpoint keys, gateway
    /// keys and the fast paths all read it here.
    static func bearerToken(_ value: String) -> Substring? {
        guard value.utf8.count > 7,
            value.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { a, b in (a >= 65 && a <= 90 ? a + 32 : a) == b })
        else { return nil }
        var token = value.dropFirst(7)
        while let c = token.first, c == " " || c == "\t" { token.removeFirst() }
        while let c = token.last, c == " " || c == "\t" { token.removeLast() }
        return token
    }

    static func isInvocation(_ path: String) -> Bool {
        path.hasPrefix("/endpoints/") && path.hasSuffix("/invocations")
    }

    func isBrowserPage(_ request: Request) -> Bool {
        request.method == .get && !request.uri.path.hasPrefix("/api/") && (request.headers[.accept]?.contains("text/html") ?? false)
    }

    func authenticate(_ request: Request) async throws -> Actor {
        guard let header = request.headers[.authorization] else {
            throw LoomError.unauthenticated("Authentication required: use HTTP Basic (username and password or token) or a Bearer token")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { throw LoomError.unauthenticated("Malformed Authorization header") }
        let scheme = parts[0].lowercased()
        let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            return try await access.authenticate(token: credential)
        case "basic":
            guard let data = Data(base64Encoded: credential), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":")
            else { throw LoomError.unauthenticated("Malformed Basic credentials") }
            let username = String(text[..<colon])
            let password = String(text[text.index(after: colon)...])
            if password.hasPrefix("loom_") {
                // A token given as the password (e.g. MLFLOW_TRACKING_PASSWORD=<token>).
                if let actor = try? await access.authenticate(token: password), actor.username == username || username.isEmpty || username == "token" {
                    return actor
                }
            }
            return try await access.authenticate(username: username, password: password)
        default:
            throw LoomError.unauthenticated("Unsupported authorization scheme '\(parts[0])'")
        }
    }
}
