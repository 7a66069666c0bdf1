import ArgumentParser
import Foundation
import LoomCore
import LoomStore
import LoomTracking

/// Reads a password from `--password`, `LOOM_PASSWORD`, or standard input (one line).
func readPassword(_ given: String?) throws -> String {
    if let given { return given }
    if let env = ProcessInfo.processInfo.environment["LOOM_PASSWORD"], !env.isEmpty { return env }
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw LoomError.invalidParameter("no password given: use --password, LOOM_PASSWORD, or pipe it on standard input")
    }
    return line
}

/// `loom users ...`: accounts, roles and per-resource permissions.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Manage users, roles and permissions.",
        subcommands: [Create.self, List.self, Delete.self, SetPassword.self, Grant.self, Revoke.self, Permit.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user.")
        @Argument var username: String
        @Option(help: "Password (else LOOM_PASSWORD or standard input).") var password: String?
        @Flag(help: "Make the user a server administrator.") var admin = false
        @Option(help: "Workspace role to grant: viewer, editor or admin.") var role: String?
        @Option(help: "Workspace for --role.") var workspace = Workspace.defaultName
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let secret = try readPassword(password)
            let role = try role.map(parseRole)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let access = AccessService(store: tracking.store)
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users create")) {
                let user = try await access.createUser(username: username, password: secret, isAdmin: admin)
                if let role { try await tracking.store.setRole(username: user.username, workspace: workspace, role: role) }
                print("created user '\(user.username)'\(admin ? " (administrator)" : "")\(role.map { " with role \($0.rawValue) in \(workspace)" } ?? "")")
            }
            await tracking.store.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their roles.")
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let users = try await tracking.store.listUsers()
            let roles = try await tracking.store.listRoles(workspace: nil)
            await tracking.store.shutdown()
            if output.json {
                struct Row: Encodable { let username: String; let isAdmin: Bool; let created: Int64; let roles: [RoleBinding] }
                return try Output.json(users.map { u in Row(username: u.username, isAdmin: u.isAdmin, created: u.creationTime, roles: roles.filter { $0.username == u.username }) })
            }
            Output.table(["USERNAME", "ADMIN", "ROLES", "CREATED"], users.map { u in
                [u.username, u.isAdmin ? "yes" : "no", roles.filter { $0.username == u.username }.map { "\($0.workspace):\($0.role.rawValue)" }.joined(separator: " "), Output.time(u.creationTime)]
            })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user and their tokens.")
        @Argument var username: String
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users delete")) {
                try await AccessService(store: tracking.store).deleteUser(username: username)
            }
            await tracking.store.shutdown()
            print("deleted user '\(username)'")
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-password", abstract: "Change a user's password.")
        @Argument var username: String
        @Option(help: "New password (else LOOM_PASSWORD or standard input).") var password: String?
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let secret = try readPassword(password)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            _ = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users set-password")) {
                try await AccessService(store: tracking.store).updatePassword(username: username, password: secret)
            }
            await tracking.store.shutdown()
            print("password changed for '\(username)'")
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a user a role in a workspace (viewer, editor, admin).")
        @Argument var username: String
        @Argument var role: String
        @Option(help: "Workspace.") var workspace = Workspace.defaultName
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let role = try parseRole(role)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users grant")) {
                try await tracking.store.setRole(username: username, workspace: workspace, role: role)
            }
            await tracking.store.shutdown()
            print("'\(username)' is now \(role.rawValue) in workspace '\(workspace)'")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user's role in a workspace.")
        @Argument var username: String
        @Option(help: "Workspace.") var workspace = Workspace.defaultName
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users revoke")) {
                try await tracking.store.setRole(username: username, workspace: workspace, role: nil)
            }
            await tracking.store.shutdown()
            print("'\(username)' has no role in workspace '\(workspace)'")
        }
    }

    struct Permit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a per-experiment or per-model permission (READ, EDIT, MANAGE, NO_PERMISSIONS).")
        @Argument var username: String
        @Option(help: "Experiment id.") var experiment: String?
        @Option(help: "Registered model name.") var model: String?
        @Argument var permission: String
        @OptionGroup var storage: StoreOptions

        func validate() throws {
            guard (experiment == nil) != (model == nil) else { throw ValidationError("give exactly one of --experiment or --model") }
            guard Permission(rawValue: permission.uppercased()) != nil else { throw ValidationError("permission must be READ, EDIT, MANAGE or NO_PERMISSIONS") }
        }

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let grant = ResourcePermission(username: username, kind: experiment != nil ? .experiment : .registeredModel,
                                           resource: experiment ?? model!, permission: Permission(rawValue: permission.uppercased())!)
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom users permit")) {
                try await tracking.store.setResourcePermission(grant)
            }
            await tracking.store.shutdown()
            print("'\(username)' has \(grant.permission.rawValue) on \(grant.kind.rawValue) '\(grant.resource)'")
        }
    }
}

func parseRole(_ s: String) throws -> Role {
    guard let r = Role(rawValue: s.lowercased()) else { throw LoomError.invalidParameter("role must be viewer, editor or admin, got '\(s)'") }
    return r
}

/// `loom tokens ...`: API tokens for the MLflow client (`MLFLOW_TRACKING_TOKEN`) and scripts.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Manage API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for a user; prints the secret once.")
        @Argument var username: String
        @Option(help: "A name for the token.") var name = "cli"
        @Option(name: .customLong("expires-in-days"), help: "Days until the token expires (default never).") var expiresInDays: Int?
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            guard let user = try await tracking.store.user(named: username) else { throw LoomError.notFound("User '\(username)' not found") }
            let expires = expiresInDays.map { Clock.nowMillis() + Int64($0) * 86_400_000 }
            let (token, secret) = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom tokens create")) {
                try await AccessService(store: tracking.store).createToken(for: user, name: name, expiresAt: expires)
            }
            await tracking.store.shutdown()
            FileHandle.standardError.write(Data("created token \(token.id) '\(token.name)' for '\(username)'; the secret below is shown once:\n".utf8))
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @Option(help: "Only this user's tokens.") var user: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            var owner: Int64?
            if let user {
                guard let u = try await tracking.store.user(named: user) else { throw LoomError.notFound("User '\(user)' not found") }
                owner = u.id
            }
            let tokens = try await tracking.store.listTokens(userID: owner)
            let users = Dictionary(uniqueKeysWithValues: try await tracking.store.listUsers().map { ($0.id, $0.username) })
            await tracking.store.shutdown()
            if output.json { return try Output.json(tokens) }
            Output.table(["ID", "USER", "NAME", "PREFIX", "CREATED", "EXPIRES", "LAST USED"], tokens.map {
                [String($0.id), users[$0.userID] ?? "?", $0.name, $0.prefix + "…", Output.time($0.creationTime), Output.time($0.expiresAt), Output.time($0.lastUsedAt)]
            })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id.")
        @Argument var id: Int64
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom tokens revoke")) {
                try await AccessService(store: tracking.store).deleteToken(id: id, owner: nil)
            }
            await tracking.store.shutdown()
            print("revoked token \(id)")
        }
    }
}
