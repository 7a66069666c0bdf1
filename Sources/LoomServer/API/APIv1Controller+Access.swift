import Foundation
import Hummingbird
import LoomCore
import LoomStore
import LoomTracking

extension APIv1Controller {
    struct Me: Encodable, Sendable {
        let username: String
        let isAdmin: Bool
        let authEnabled: Bool
        let workspace: String
        let roles: [RoleBinding]
    }

    struct CreatedToken: Encodable, Sendable {
        let token: APIToken
        /// Shown once; only its hash is stored.
        let secret: String
    }

    func addAccessRoutes(to routes: Routes) {
        let p = Self.prefix
        routes.get("\(p)/version") { _, _ in
            try Self.respond(["loom": LoomVersion.current, "mlflow_api": SystemController.mlflowCompatibleVersion])
        }
        routes.get("\(p)/me") { _, context in
            let roles = context.actor.userID == nil ? [] : try await services.store.roles(username: context.actor.username)
            return try Self.respond(Me(username: context.actor.username, isAdmin: context.actor.isAdmin, authEnabled: context.authEnabled, workspace: context.workspace, roles: roles))
        }
        routes.get("\(p)/workspaces") { _, _ in
            try Self.respond(Listing(items: try await services.store.listWorkspaces(), nextPageToken: nil))
        }
        routes.post("\(p)/workspaces") { request, context in
            try auth.requireAdmin(context)
            let body = try await Self.body(request, context)
            let name = try body.requiredString("name")
            guard !name.isEmpty, name.count <= 64, name.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "-" || $0 == "_" }) else {
                throw LoomError.invalidParameter("Invalid workspace name '\(name)': use 1-64 letters, digits, '-' or '_'")
            }
            let ws = try await services.store.createWorkspace(Workspace(name: name, description: try body.string("description"), creationTime: Clock.nowMillis()))
            return try Self.respond(ws, status: .created)
        }
        routes.get("\(p)/users") { _, context in
            try auth.requireAdmin(context)
            return try Self.respond(Listing(items: try await services.store.listUsers(), nextPageToken: nil))
        }
        routes.post("\(p)/users") { request, context in
            try auth.requireAdmin(context)
            let body = try await Self.body(request, context)
            let user = try await services.access.createUser(
                username: try body.requiredString("username"), password: try body.requiredString("password"), isAdmin: try body.bool("is_admin") ?? false)
            return try Self.respond(user, status: .created)
        }
        routes.get("\(p)/users/:username") { _, context in
            let username = try Self.param(context, "username")
            if context.actor.username != username { try auth.requireAdmin(context) }
            guard let user = try await services.store.user(named: username) else { throw LoomError.notFound("User '\(username)' not found") }
            return try Self.respond(user)
        }
        routes.patch("\(p)/users/:username") { request, context in
            let username = try Self.param(context, "username")
            let body = try await Self.body(request, context)
            if context.actor.username != username || body.has("is_admin") { try auth.requireAdmin(context) }
            guard var user = try await services.store.user(named: username) else { throw LoomError.notFound("User '\(username)' not found") }
            if let password = try body.string("password") { user = try await services.access.updatePassword(username: username, password: password) }
            if let admin = try body.bool("is_admin") { user = try await services.access.setAdmin(username: username, isAdmin: admin) }
            return try Self.respond(user)
        }
        routes.delete("\(p)/users/:username") { _, context in
            try auth.requireAdmin(context)
            try await services.access.deleteUser(username: try Self.param(context, "username"))
            return Self.noContent
        }
        routes.get("\(p)/users/:username/roles") { _, context in
            let username = try Self.param(context, "username")
            if context.actor.username != username { try auth.requireAdmin(context) }
            return try Self.respond(Listing(items: try await services.store.roles(username: username), nextPageToken: nil))
        }
        routes.put("\(p)/users/:username/roles/:workspace") { request, context in
            try auth.requireAdmin(context)
            let body = try await Self.body(request, context)
            let raw = try body.requiredString("role")
            guard let role = Role(rawValue: raw.lowercased()) else { throw LoomError.invalidParameter("Invalid role '\(raw)': expected viewer, editor or admin") }
            try await services.store.setRole(username: try Self.param(context, "username"), workspace: try Self.param(context, "workspace"), role: role)
            services.access.invalidateCache()
            return Self.noContent
        }
        routes.delete("\(p)/users/:username/roles/:workspace") { _, context in
            try auth.requireAdmin(context)
            try await services.store.setRole(username: try Self.param(context, "username"), workspace: try Self.param(context, "workspace"), role: nil)
            return Self.noContent
        }
        routes.get("\(p)/users/:username/permissions") { _, context in
            let username = try Self.param(context, "username")
            if context.actor.username != username { try auth.requireAdmin(context) }
            return try Self.respond(Listing(items: try await services.store.resourcePermissions(username: username), nextPageToken: nil))
        }
        routes.put("\(p)/users/:username/permissions/:kind/:resource") { request, context in
            let username = try Self.param(context, "username")
            let kind = try Self.resourceKind(context)
            let resource = try Self.param(context, "resource")
            try await requireManage(context, kind, resource)
            let body = try await Self.body(request, context)
            let raw = try body.requiredString("permission")
            guard let permission = Permission(rawValue: raw.uppercased()) else {
                throw LoomError.invalidParameter("Invalid permission '\(raw)': expected READ, EDIT, MANAGE or NO_PERMISSIONS")
            }
            try await services.store.setResourcePermission(ResourcePermission(username: username, kind: kind, resource: resource, permission: permission))
            return Self.noContent
        }
        routes.delete("\(p)/users/:username/permissions/:kind/:resource") { _, context in
            let kind = try Self.resourceKind(context)
            let resource = try Self.param(context, "resource")
            try await requireManage(context, kind, resource)
            try await services.store.deleteResourcePermission(username: try Self.param(context, "username"), kind: kind, resource: resource)
            return Self.noContent
        }
        routes.get("\(p)/tokens") { request, context in
            var owner = context.actor.userID
            if let username = request.query["username"], username != context.actor.username {
                try auth.requireAdmin(context)
                guard let u = try await services.store.user(named: username) else { throw LoomError.notFound("User '\(username)' not found") }
                owner = u.id
            } else if !context.authEnabled {
                owner = nil
            }
            return try Self.respond(Listing(items: try await services.store.listTokens(userID: owner), nextPageToken: nil))
        }
        routes.post("\(p)/tokens") { request, context in
            let body = try await Self.body(request, context)
            let username = try body.string("username") ?? context.actor.username
            if username != context.actor.username { try auth.requireAdmin(context) }
            guard let user = try await services.store.user(named: username) else { throw LoomError.notFound("User '\(username)' not found") }
            var expires: Millis?
            if let days = try body.int("expires_in_days") {
                guard days > 0, days <= 3650 else { throw LoomError.invalidParameter("'expires_in_days' must be between 1 and 3650") }
                expires = Clock.nowMillis() + Int64(days) * 86_400_000
            }
            let (token, secret) = try await services.access.createToken(for: user, name: try body.string("name") ?? "api", expiresAt: expires)
            return try Self.respond(CreatedToken(token: token, secret: secret), status: .created)
        }
        routes.delete("\(p)/tokens/:token_id") { _, context in
            guard let id = Int64(try Self.param(context, "token_id")) else { throw LoomError.notFound("Token not found") }
            let owner: Int64? = context.actor.isAdmin ? nil : context.actor.userID
            try await services.access.deleteToken(id: id, owner: owner)
            return Self.noContent
        }
        routes.get("\(p)/audit") { request, context in
            try auth.requireAdmin(context)
            let q = request.query
            let limit = try q.int("max_results") ?? 100
            guard (1...1000).contains(limit) else { throw LoomError.invalidParameter("'max_results' must be between 1 and 1000") }
            let page = try await services.store.auditEvents(AuditQuery(
                actor: q["actor"], entityType: q["entity_type"], entityID: q["entity_id"], since: try q.int64("since"),
                maxResults: limit, offset: try PageToken.decode(q["page_token"])))
            return try Self.respond(Listing(items: page.items, nextPageToken: page.nextPageToken))
        }
    }

    static func resourceKind(_ context: Context) throws -> ResourceKind {
        let raw = try param(context, "kind")
        switch raw {
        case "experiments", "experiment": return .experiment
        case "models", "registered_model", "registered-models": return .registeredModel
        default: throw LoomError.invalidParameter("Invalid resource kind '\(raw)': expected experiments or models")
        }
    }

    /// Granting on a resource needs MANAGE on it (administrators always have it).
    func requireManage(_ context: Context, _ kind: ResourceKind, _ resource: String) async throws {
        switch kind {
        case .experiment: try await auth.requireExperiment(context, resource, .manage)
        case .registeredModel: try await auth.requireModel(context, resource, .manage)
        }
        services.access.invalidateCache()
    }
}
