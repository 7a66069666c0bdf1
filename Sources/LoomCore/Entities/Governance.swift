/// The tenant and permission scope that owns experiments and models.
public struct Workspace: Sendable, Codable, Hashable {
    public static let defaultName = "default"
    public var name: String
    public var description: String?
    public var creationTime: Millis
    public init(name: String, description: String? = nil, creationTime: Millis) {
        self.name = name
        self.description = description
        self.creationTime = creationTime
    }
}

/// A role a user holds in a workspace. Roles are ordered: admin ⊃ editor ⊃ viewer.
public enum Role: String, Sendable, Codable, Hashable, CaseIterable, Comparable {
    case viewer, editor, admin

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    var rank: Int {
        switch self {
        case .viewer: return 1
        case .editor: return 2
        case .admin: return 3
        }
    }
}

/// A permission on one experiment or one registered model, as MLflow's auth plugin names them.
public enum Permission: String, Sendable, Codable, Hashable, CaseIterable, Comparable {
    case noPermissions = "NO_PERMISSIONS"
    case read = "READ"
    case edit = "EDIT"
    case manage = "MANAGE"

    public static func < (a: Permission, b: Permission) -> Bool { a.rank < b.rank }
    var rank: Int {
        switch self {
        case .noPermissions: return 0
        case .read: return 1
        case .edit: return 2
        case .manage: return 3
        }
    }

    /// The permission a workspace role implies when no per-resource grant exists.
    public init(role: Role?) {
        switch role {
        case .admin: self = .manage
        case .editor: self = .edit
        case .viewer: self = .read
        case nil: self = .noPermissions
        }
    }

    public var canRead: Bool { self >= .read }
    public var canEdit: Bool { self >= .edit }
    public var canManage: Bool { self >= .manage }
}

/// A person or service account.
public struct User: Sendable, Codable, Hashable {
    public var id: Int64
    public var username: String
    /// A server-wide administrator: may do anything, including managing users.
    public var isAdmin: Bool
    public var creationTime: Millis
    public init(id: Int64, username: String, isAdmin: Bool, creationTime: Millis) {
        self.id = id
        self.username = username
        self.isAdmin = isAdmin
        self.creationTime = creationTime
    }
}

/// An API token's metadata. The secret itself is shown once at creation and stored only as a hash.
public struct APIToken: Sendable, Codable, Hashable {
    public var id: Int64
    public var userID: Int64
    public var name: String
    public var prefix: String
    public var creationTime: Millis
    public var expiresAt: Millis?
    public var lastUsedAt: Millis?
    public init(id: Int64, userID: Int64, name: String, prefix: String, creationTime: Millis, expiresAt: Millis?, lastUsedAt: Millis?) {
        self.id = id
        self.userID = userID
        self.name = name
        self.prefix = prefix
        self.creationTime = creationTime
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A user's role in a workspace.
public struct RoleBinding: Sendable, Codable, Hashable {
    public var username: String
    public var workspace: String
    public var role: Role
    public init(username: String, workspace: String, role: Role) {
        self.username = username
        self.workspace = workspace
        self.role = role
    }
}

/// The kind of resource a per-resource permission applies to.
public enum ResourceKind: String, Sendable, Codable, Hashable {
    case experiment
    case registeredModel = "registered_model"
}

/// A per-resource grant that overrides the workspace role for one experiment or model.
public struct ResourcePermission: Sendable, Codable, Hashable {
    public var username: String
    public var kind: ResourceKind
    /// The experiment id, or the registered model's name.
    public var resource: String
    public var permission: Permission
    public init(username: String, kind: ResourceKind, resource: String, permission: Permission) {
        self.username = username
        self.kind = kind
        self.resource = resource
        self.permission = permission
    }
}

/// Who is acting: a user, or anonymous when auth is off.
public struct Actor: Sendable, Hashable {
    public var username: String
    public var userID: Int64?
    public var isAdmin: Bool
    public init(username: String, userID: Int64? = nil, isAdmin: Bool = false) {
        self.username = username
        self.userID = userID
        self.isAdmin = isAdmin
    }
    /// The actor when authentication is off: everything is allowed.
    public static let anonymous = Actor(username: "anonymous", isAdmin: true)
    /// Internal maintenance work (migrations, bootstrap).
    public static let system = Actor(username: "system", isAdmin: true)
}

/// One entry of the append-only audit log.
public struct AuditEvent: Sendable, Codable, Hashable {
    public var id: Int64
    public var time: Millis
    public var actor: String
    public var action: String
    public var entityType: String
    public var entityID: String
    public var workspace: String?
    /// HTTP status of the call (0 when not from HTTP).
    public var status: Int
    public var detail: String?

    public init(
        id: Int64 = 0, time: Millis, actor: String, action: String, entityType: String, entityID: String,
        workspace: String? = nil, status: Int = 0, detail: String? = nil
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.entityType = entityType
        self.entityID = entityID
        self.workspace = workspace
        self.status = status
        self.detail = detail
    }
}
