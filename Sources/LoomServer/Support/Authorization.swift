import LoomCore
import LoomStore
import LoomTracking

/// Permission checks used by the handlers. With auth off every check passes without a lookup.
struct Authorization: Sendable {
    let access: AccessService
    let tracking: TrackingService

    func requireExperiment(_ context: LoomRequestContext, _ experimentID: String, _ needed: Permission) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        let p = try await access.permission(context.actor, experimentID: experimentID, workspace: context.workspace)
        guard p >= needed else { throw Self.denied(context, "experiment \(experimentID)", needed) }
    }

    /// Checks the permission on a run's experiment and returns the run's info.
    @discardableResult
    func requireRun(_ context: LoomRequestContext, _ runID: String, _ needed: Permission) async throws -> RunInfo? {
        guard context.authEnabled, !context.actor.isAdmin else { return nil }
        guard let info = try await tracking.store.runInfo(id: runID) else {
            throw LoomError.notFound("Run with id=\(runID) not found")
        }
        try await requireExperiment(context, info.experimentID, needed)
        return info
    }

    func requireLoggedModel(_ context: LoomRequestContext, _ modelID: String, _ needed: Permission) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        guard let m = try await tracking.store.loggedModel(id: modelID) else {
            throw LoomError.notFound("Logged model with ID '\(modelID)' not found.")
        }
        try await requireExperiment(context, m.experimentID, needed)
    }

    func requireModel(_ context: LoomRequestContext, _ name: String, _ needed: Permission) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        let p = try await access.permission(context.actor, registeredModel: name, workspace: context.workspace)
        guard p >= needed else { throw Self.denied(context, "registered model '\(name)'", needed) }
    }

    /// Checks the caller's role in the request's workspace (e.g. editor to create experiments).
    func requireRole(_ context: LoomRequestContext, _ needed: Role) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        guard let role = try await access.role(context.actor, workspace: context.workspace), role >= needed else {
            throw LoomError.permissionDenied("Permission denied: '\(context.actor.username)' needs the \(needed.rawValue) role in workspace '\(context.workspace)'")
        }
    }

    /// Server administrators only (user management).
    func requireAdmin(_ context: LoomRequestContext) throws {
        guard context.authEnabled else { return }
        guard context.actor.isAdmin else { throw LoomError.permissionDenied("Permission denied: administrator only") }
    }

    /// Whether the caller may read an experiment (for filtering listings).
    func canRead(_ context: LoomRequestContext, experimentID: String) async throws -> Bool {
        guard context.authEnabled, !context.actor.isAdmin else { return true }
        return try await access.permission(context.actor, experimentID: experimentID, workspace: context.workspace).canRead
    }

    func canRead(_ context: LoomRequestContext, model name: String) async throws -> Bool {
        guard context.authEnabled, !context.actor.isAdmin else { return true }
        return try await access.permission(context.actor, registeredModel: name, workspace: context.workspace).canRead
    }

    /// Gives the creator MANAGE on what they created, as MLflow's auth plugin does.
    func grantCreator(_ context: LoomRequestContext, kind: ResourceKind, resource: String) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        try await access.store.setResourcePermission(ResourcePermission(username: context.actor.username, kind: kind, resource: resource, permission: .manage))
    }

    static func denied(_ context: LoomRequestContext, _ what: String, _ needed: Permission) -> LoomError {
        .permissionDenied("Permission denied: '\(context.actor.username)' needs \(needed.rawValue) on \(what)")
    }
}
