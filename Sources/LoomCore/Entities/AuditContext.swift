/// Who is acting for the current task, carried through the call chain so that the store can write
/// the audit record in the same transaction as the change it describes.
public struct AuditContext: Sendable {
    public var actor: String
    public var workspace: String?
    /// Where the call came from (e.g. `POST /api/2.0/mlflow/runs/create`, `cli`).
    public var origin: String

    public init(actor: String, workspace: String? = nil, origin: String) {
        self.actor = actor
        self.workspace = workspace
        self.origin = origin
    }

    @TaskLocal public static var current = AuditContext(actor: "system", origin: "internal")
}
