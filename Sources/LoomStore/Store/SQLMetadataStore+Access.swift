import LoomCore
import SQLKit

extension SQLMetadataStore {
    // MARK: Users

    public func createUser(username: String, passwordHash: String, isAdmin: Bool, time: Millis) async throws -> User {
        do {
            return try await write("create_user", "user", username) { db in
                guard let row = try await db.raw("""
                    INSERT INTO users (username, password_hash, is_admin, creation_time) VALUES (\(bind: username), \(bind: passwordHash), \(bind: isAdmin ? 1 : 0), \(bind: time))
                    RETURNING id
                    """).first() else { throw LoomError.internalError("insert returned no id") }
                return User(id: try row.int64("id"), username: username, isAdmin: isAdmin, creationTime: time)
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            throw LoomError.alreadyExists("User '\(username)' already exists.")
        }
    }

    public func user(named username: String) async throws -> User? {
        try await read { db in try await db.raw("SELECT * FROM users WHERE username = \(bind: username)").first().map(Self.decodeUser) }
    }

    public func user(id: Int64) async throws -> User? {
        try await read { db in try await db.raw("SELECT * FROM users WHERE id = \(bind: id)").first().map(Self.decodeUser) }
    }

    public func passwordHash(username: String) async throws -> (User, String)? {
        try await read { db in
            guard let row = try await db.raw("SELECT * FROM users WHERE username = \(bind: username)").first() else { return nil }
            return (try Self.decodeUser(row), try row.string("password_hash"))
        }
    }

    public func listUsers() async throws -> [User] {
        try await read { db in try await db.raw("SELECT * FROM users ORDER BY username").all().map(Self.decodeUser) }
    }

    public func updateUser(username: String, passwordHash: String?, isAdmin: Bool?) async throws -> User {
        try await write("update_user", "user", username, detail: passwordHash != nil ? "password" : "role") { db in
            guard try await db.raw("SELECT id FROM users WHERE username = \(bind: username)").first() != nil else {
                throw LoomError.notFound("User '\(username)' not found")
            }
            if let passwordHash {
                try await db.raw("UPDATE users SET password_hash = \(bind: passwordHash) WHERE username = \(bind: username)").run()
            }
            if let isAdmin {
                try await db.raw("UPDATE users SET is_admin = \(bind: isAdmin ? 1 : 0) WHERE username = \(bind: username)").run()
            }
            return try Self.decodeUser(try await db.raw("SELECT * FROM users WHERE username = \(bind: username)").first()!)
        }
    }

    public func deleteUser(username: String) async throws {
        try await write("delete_user", "user", username) { db in
            let gone = try await db.raw("DELETE FROM users WHERE username = \(bind: username) RETURNING id").all()
            guard !gone.isEmpty else { throw LoomError.notFound("User '\(username)' not found") }
        }
    }

    public func countUsers() async throws -> Int {
        try await read { db in Int(try await db.raw("SELECT COUNT(*) AS n FROM users").first()?.int64("n") ?? 0) }
    }

    static func decodeUser(_ row: any SQLRow) throws -> User {
        User(id: try row.int64("id"), username: try row.string("username"), isAdmin: try row.int64("is_admin") != 0, creationTime: try row.int64("creation_time"))
    }

    // MARK: Tokens

    public func createToken(userID: Int64, name: String, prefix: String, tokenHash: String, expiresAt: Millis?, time: Millis) async throws -> APIToken {
        try await write("create_token", "token", entityIDFrom: { (t: APIToken) in String(t.id) }, detail: name) { db in
            guard let row = try await db.raw("""
                INSERT INTO api_tokens (user_id, name, prefix, token_hash, creation_time, expires_at, last_used_at)
                VALUES (\(bind: userID), \(bind: name), \(bind: prefix), \(bind: tokenHash), \(bind: time), \(bind: expiresAt), NULL) RETURNING id
                """).first() else { throw LoomError.internalError("insert returned no id") }
            return APIToken(id: try row.int64("id"), userID: userID, name: name, prefix: prefix, creationTime: time, expiresAt: expiresAt, lastUsedAt: nil)
        }
    }

    public func token(hash: String) async throws -> (APIToken, User)? {
        try await read { db in
            guard let row = try await db.raw("""
                SELECT t.id AS token_id, t.user_id, t.name, t.prefix, t.creation_time AS token_created, t.expires_at, t.last_used_at,
                       u.id, u.username, u.is_admin, u.creation_time
                FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = \(bind: hash)
                """).first() else { return nil }
            let token = APIToken(id: try row.int64("token_id"), userID: try row.int64("user_id"), name: try row.string("name"), prefix: try row.string("prefix"),
                                 creationTime: try row.int64("token_created"), expiresAt: try row.optionalInt64("expires_at"), lastUsedAt: try row.optionalInt64("last_used_at"))
            return (token, try Self.decodeUser(row))
        }
    }

    public func listTokens(userID: Int64?) async throws -> [APIToken] {
        try await read { db in
            let rows: [any SQLRow]
            if let userID {
                rows = try await db.raw("SELECT * FROM api_tokens WHERE user_id = \(bind: userID) ORDER BY id").all()
            } else {
                rows = try await db.raw("SELECT * FROM api_tokens ORDER BY id").all()
            }
            return try rows.map { r in
                APIToken(id: try r.int64("id"), userID: try r.int64("user_id"), name: try r.string("name"), prefix: try r.string("prefix"),
                         creationTime: try r.int64("creation_time"), expiresAt: try r.optionalInt64("expires_at"), lastUsedAt: try r.optionalInt64("last_used_at"))
            }
        }
    }

    public func deleteToken(id: Int64, userID: Int64?) async throws {
        try await write("delete_token", "token", String(id)) { db in
            let gone: [any SQLRow]
            if let userID {
                gone = try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id) AND user_id = \(bind: userID) RETURNING id").all()
            } else {
                gone = try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id) RETURNING id").all()
            }
            guard !gone.isEmpty else { throw LoomError.notFound("Token \(id) not found") }
        }
    }

    public func touchToken(id: Int64, time: Millis) async throws {
        _ = try await batcher.submit(validatesFirst: true) { db in
            try await db.raw("UPDATE api_tokens SET last_used_at = \(bind: time) WHERE id = \(bind: id)").run()
            return ((), AuditEvent?.none)
        }
    }

    // MARK: Roles and permissions

    public func setRole(username: String, workspace: String, role: Role?) async throws {
        try await write("set_role", "user", username, detail: "\(workspace)=\(role?.rawValue ?? "none")") { db in
            guard let u = try await db.raw("SELECT id FROM users WHERE username = \(bind: username)").first() else {
                throw LoomError.notFound("User '\(username)' not found")
            }
            guard try await db.raw("SELECT name FROM workspaces WHERE name = \(bind: workspace)").first() != nil else {
                throw LoomError.notFound("Workspace '\(workspace)' not found")
            }
            let uid = try u.int64("id")
            if let role {
                try await db.raw("""
                    INSERT INTO workspace_roles (user_id, workspace, role) VALUES (\(bind: uid), \(bind: workspace), \(bind: role.rawValue))
                    ON CONFLICT (user_id, workspace) DO UPDATE SET role = excluded.role
                    """).run()
            } else {
                try await db.raw("DELETE FROM workspace_roles WHERE user_id = \(bind: uid) AND workspace = \(bind: workspace)").run()
            }
        }
    }

    public func roles(username: String) async throws -> [RoleBinding] {
        try await read { db in
            try await db.raw("""
                SELECT u.username, r.workspace, r.role FROM workspace_roles r JOIN users u ON u.id = r.user_id
                WHERE u.username = \(bind: username) ORDER BY r.workspace
                """).all().map(Self.decodeRole)
        }
    }

    public func listRoles(workspace: String?) async throws -> [RoleBinding] {
        try await read { db in
            if let workspace {
                return try await db.raw("""
                    SELECT u.username, r.workspace, r.role FROM workspace_roles r JOIN users u ON u.id = r.user_id
                    WHERE r.workspace = \(bind: workspace) ORDER BY u.username
                    """).all().map(Self.decodeRole)
            }
            return try await db.raw("""
                SELECT u.username, r.workspace, r.role FROM workspace_roles r JOIN users u ON u.id = r.user_id ORDER BY r.workspace, u.username
                """).all().map(Self.decodeRole)
        }
    }

    static func decodeRole(_ r: any SQLRow) throws -> RoleBinding {
        RoleBinding(username: try r.string("username"), workspace: try r.string("workspace"), role: Role(rawValue: try r.string("role")) ?? .viewer)
    }

    public func setResourcePermission(_ p: ResourcePermission) async throws {
        try await write("set_permission", p.kind.rawValue, p.resource, detail: "\(p.username)=\(p.permission.rawValue)") { db in
            guard let u = try await db.raw("SELECT id FROM users WHERE username = \(bind: p.username)").first() else {
                throw LoomError.notFound("User '\(p.username)' not found")
            }
            try await db.raw("""
                INSERT INTO resource_permissions (user_id, kind, resource, permission) VALUES (\(bind: try u.int64("id")), \(bind: p.kind.rawValue), \(bind: p.resource), \(bind: p.permission.rawValue))
                ON CONFLICT (user_id, kind, resource) DO UPDATE SET permission = excluded.permission
                """).run()
        }
    }

    public func deleteResourcePermission(username: String, kind: ResourceKind, resource: String) async throws {
        try await write("delete_permission", kind.rawValue, resource, detail: username) { db in
            let gone = try await db.raw("""
                DELETE FROM resource_permissions WHERE kind = \(bind: kind.rawValue) AND resource = \(bind: resource)
                AND user_id = (SELECT id FROM users WHERE username = \(bind: username)) RETURNING user_id
                """).all()
            guard !gone.isEmpty else { throw LoomError.notFound("No \(kind.rawValue) permission for '\(username)' on '\(resource)'") }
        }
    }

    public func resourcePermissions(username: String) async throws -> [ResourcePermission] {
        try await read { db in
            try await db.raw("""
                SELECT u.username, p.kind, p.resource, p.permission FROM resource_permissions p JOIN users u ON u.id = p.user_id
                WHERE u.username = \(bind: username) ORDER BY p.kind, p.resource
                """).all().map { r in
                ResourcePermission(username: try r.string("username"), kind: ResourceKind(rawValue: try r.string("kind")) ?? .experiment,
                                   resource: try r.string("resource"), permission: Permission(rawValue: try r.string("permission")) ?? .noPermissions)
            }
        }
    }

    public func resourcePermission(username: String, kind: ResourceKind, resource: String) async throws -> Permission? {
        try await read { db in
            try await db.raw("""
                SELECT p.permission FROM resource_permissions p JOIN users u ON u.id = p.user_id
                WHERE u.username = \(bind: username) AND p.kind = \(bind: kind.rawValue) AND p.resource = \(bind: resource)
                """).first().map { Permission(rawValue: try $0.string("permission")) ?? .noPermissions }
        }
    }

    // MARK: Audit

    public func appendAudit(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        _ = try await batcher.submit(validatesFirst: true) { db in
            try await WriteBatcher.insertAudits(events, db)
            return ((), AuditEvent?.none)
        }
    }

    public func auditEvents(_ q: AuditQuery) async throws -> Page<AuditEvent> {
        var conds: [SQLQueryString] = ["1 = 1"]
        if let a = q.actor { conds.append("actor = \(bind: a)") }
        if let t = q.entityType { conds.append("entity_type = \(bind: t)") }
        if let i = q.entityID { conds.append("entity_id = \(bind: i)") }
        if let s = q.since { conds.append("time >= \(bind: s)") }
        let query: SQLQueryString = "SELECT * FROM audit_events WHERE \(conds.joined(separator: " AND ")) ORDER BY id DESC LIMIT \(bind: q.maxResults + 1) OFFSET \(bind: q.offset)"
        return try await read { db in
            let rows = try await db.raw(query).all()
            let items = try rows.prefix(q.maxResults).map { r in
                AuditEvent(id: try r.int64("id"), time: try r.int64("time"), actor: try r.string("actor"), action: try r.string("action"),
                           entityType: try r.string("entity_type"), entityID: try r.string("entity_id"), workspace: try r.optionalString("workspace"),
                           status: Int(try r.int64("status")), detail: try r.optionalString("detail"))
            }
            return Page(items: items, nextPageToken: rows.count > q.maxResults ? PageToken.encode(offset: q.offset + q.maxResults) : nil)
        }
    }
}
