import Crypto
import Foundation
import HummingbirdBcrypt
import LoomCore
import LoomStore
import Synchronization

/// Users, passwords, API tokens and the permission rules.
///
/// Passwords are stored as bcrypt hashes and tokens as SHA-256 hashes; neither secret is ever
/// stored or logged in clear. Successful verifications are cached briefly so that HTTP Basic on
/// every request (as the MLflow client sends it) does not pay bcrypt's cost each time.
public final class AccessService: Sendable {
    public let store: any MetadataStore
    let bcryptCost: UInt8
    private let cache = Mutex<[String: CachedIdentity]>([:])
    let cacheSeconds: Double

    struct CachedIdentity {
        let actor: Actor
        let expires: Date
        let tokenID: Int64?
    }

    /// A hash of the same cost as real ones, verified for unknown users.
    let dummyHash: String

    public init(store: any MetadataStore, bcryptCost: UInt8 = 10, cacheSeconds: Double = 30) {
        self.store = store
        self.bcryptCost = bcryptCost
        self.dummyHash = Bcrypt.hash("loom-unknown-user", cost: bcryptCost)
        self.cacheSeconds = cacheSeconds
    }

    // MARK: Users

    public func createUser(username: String, password: String, isAdmin: Bool) async throws -> User {
        try Self.validateUsername(username)
        try Self.validatePassword(password)
        let hash = await hashPassword(password)
        return try await store.createUser(username: username, passwordHash: hash, isAdmin: isAdmin, time: Clock.nowMillis())
    }

    public func updatePassword(username: String, password: String) async throws -> User {
        try Self.validatePassword(password)
        let hash = await hashPassword(password)
        let user = try await store.updateUser(username: username, passwordHash: hash, isAdmin: nil)
        invalidateCache()
        return user
    }

    public func setAdmin(username: String, isAdmin: Bool) async throws -> User {
        if !isAdmin { try await requireAnotherAdmin(than: username) }
        let user = try await store.updateUser(username: username, passwordHash: nil, isAdmin: isAdmin)
        invalidateCache()
        return user
    }

    public func deleteUser(username: String) async throws {
        try await requireAnotherAdmin(than: username)
        try await store.deleteUser(username: username)
        invalidateCache()
    }

    /// Refuses to remove the last administrator, which would lock everyone out of user management.
    func requireAnotherAdmin(than username: String) async throws {
        let admins = try await store.listUsers().filter(\.isAdmin)
        if admins.count == 1, admins[0].username == username {
            throw LoomError.invalidParameter("'\(username)' is the only administrator; make another user an administrator first")
        }
    }

    /// Creates the first administrator when there are no users yet. Returns the generated password
    /// when none was given, so the caller can show it once.
    public func bootstrapAdmin(username: String, password: String?) async throws -> (User, String?)? {
        guard try await store.countUsers() == 0 else { return nil }
        let secret = password ?? Self.randomSecret(bytes: 18)
        let user = try await AuditContext.$current.withValue(AuditContext(actor: "system", origin: "bootstrap")) {
            try await createUser(username: username, password: secret, isAdmin: true)
        }
        return (user, password == nil ? secret : nil)
    }

    static func validateUsername(_ name: String) throws(LoomError) {
        guard !name.isEmpty, name.count <= 128,
              name.unicodeScalars.allSatisfy({ $0.isASCIIAlnumOrPunct })
        else {
            throw .invalidParameter("Invalid username '\(name)': use 1-128 letters, digits, '.', '_', '-' or '@'")
        }
    }

    static func validatePassword(_ password: String) throws(LoomError) {
        guard password.count >= 8 else { throw .invalidParameter("Password must be at least 8 characters long") }
        guard password.utf8.count <= 72 else { throw .invalidParameter("Password must be at most 72 bytes long") }
    }

    func hashPassword(_ password: String) async -> String {
        let cost = bcryptCost
        return await Task.detached { Bcrypt.hash(password, cost: cost) }.value
    }

    // MARK: Tokens

    /// Creates a token; the returned secret is shown once and never stored.
    public func createToken(for user: User, name: String, expiresAt: Millis?) async throws -> (APIToken, String) {
        guard !name.isEmpty, name.count <= 200 else { throw LoomError.invalidParameter("Token name must be 1-200 characters") }
        let secret = "loom_" + Self.randomSecret(bytes: 32)
        let token = try await store.createToken(
            userID: user.id, name: name, prefix: String(secret.prefix(12)), tokenHash: Self.sha256(secret), expiresAt: expiresAt, time: Clock.nowMillis())
        return (token, secret)
    }

    public func deleteToken(id: Int64, owner: Int64?) async throws {
        try await store.deleteToken(id: id, userID: owner)
        invalidateCache()
    }

    // MARK: Authentication

    /// Verifies a username and password (HTTP Basic).
    public func authenticate(username: String, password: String) async throws -> Actor {
        let key = "b:" + Self.sha256(username + "\u{0}" + password)
        if let hit = cached(key) { return hit.actor }
        guard let (user, hash) = try await store.passwordHash(username: username) else {
            // Spend comparable time so that unknown users are not revealed by timing.
            let dummy = dummyHash
            _ = await Task.detached { Bcrypt.verify(password, hash: dummy) }.value
            throw LoomError.unauthenticated("Invalid username or password")
        }
        let ok = await Task.detached { Bcrypt.verify(password, hash: hash) }.value
        guard ok else { throw LoomError.unauthenticated("Invalid username or password") }
        let actor = Actor(username: user.username, userID: user.id, isAdmin: user.isAdmin)
        remember(key, actor: actor, tokenID: nil)
        return actor
    }

    /// Verifies an API token (HTTP Bearer, or a token sent as a Basic password).
    public func authenticate(token: String) async throws -> Actor {
        let hash = Self.sha256(token)
        let key = "t:" + hash
        if let hit = cached(key) { return hit.actor }
        guard let (record, user) = try await store.token(hash: hash) else {
            throw LoomError.unauthenticated("Invalid API token")
        }
        let now = Clock.nowMillis()
        if let exp = record.expiresAt, exp <= now { throw LoomError.unauthenticated("The API token has expired") }
        let actor = Actor(username: user.username, userID: user.id, isAdmin: user.isAdmin)
        remember(key, actor: actor, tokenID: record.id)
        try? await store.touchToken(id: record.id, time: now)
        return actor
    }

    func cached(_ key: String) -> CachedIdentity? {
        cache.withLock { c in
            guard let hit = c[key] else { return nil }
            if hit.expires < Date() { c[key] = nil; return nil }
            return hit
        }
    }

    func remember(_ key: String, actor: Actor, tokenID: Int64?) {
        let expires = Date().addingTimeInterval(cacheSeconds)
        cache.withLock { c in
            if c.count > 10_000 { c.removeAll() }
            c[key] = CachedIdentity(actor: actor, expires: expires, tokenID: tokenID)
        }
    }

    /// Forgets every cached identity (after a password, role or token change).
    public func invalidateCache() {
        cache.withLock { $0.removeAll() }
    }

    // MARK: Authorization

    /// The permission `actor` has on an experiment (by id) in `workspace`.
    public func permission(_ actor: Actor, experimentID: String, workspace: String) async throws -> Permission {
        try await permission(actor, kind: .experiment, resource: experimentID, workspace: workspace)
    }

    /// The permission `actor` has on a registered model (by name) in `workspace`.
    public func permission(_ actor: Actor, registeredModel name: String, workspace: String) async throws -> Permission {
        try await permission(actor, kind: .registeredModel, resource: name, workspace: workspace)
    }

    func permission(_ actor: Actor, kind: ResourceKind, resource: String, workspace: String) async throws -> Permission {
        if actor.isAdmin { return .manage }
        if let explicit = try await store.resourcePermission(username: actor.username, kind: kind, resource: resource) {
            return explicit
        }
        return try await Permission(role: role(actor, workspace: workspace))
    }

    /// The role `actor` holds in `workspace` (admins act as workspace admins everywhere).
    public func role(_ actor: Actor, workspace: String) async throws -> Role? {
        if actor.isAdmin { return .admin }
        return try await store.roles(username: actor.username).first(where: { $0.workspace == workspace })?.role
    }

    // MARK: Helpers

    public static func sha256(_ text: String) -> String {
        Identifiers.hex(bytes: SHA256.hash(data: Data(text.utf8)))
    }

    static func randomSecret(bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &g) }
        return Data(raw).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

extension Unicode.Scalar {
    var isASCIIAlnumOrPunct: Bool {
        (value >= 48 && value <= 57) || (value >= 65 && value <= 90) || (value >= 97 && value <= 122) || self == "." || self == "_" || self == "-" || self == "@"
    }
}
