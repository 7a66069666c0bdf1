import LoomCore
import LoomStore

/// Flows stored in a workspace (docs/flows.md, "Stored flows"): `loom apply` of a `kind: flow`
/// spec checks it whole and records a changed text as the flow's next version; runs,
/// evaluations and endpoints name `NAME` (the newest version) or `NAME@VERSION`.
public struct FlowLibrary: Sendable {
    let store: any MetadataStore

    public init(store: any MetadataStore) {
        self.store = store
    }

    /// Checks and records a flow; the version that holds the text, and whether it is new.
    public func apply(yaml: String, workspace: String, actor: String) async throws -> (FlowVersion, spec: FlowSpec, changed: Bool) {
        let spec = try FlowSpec.parse(yaml: yaml)
        guard (try? Validate.datasetName(spec.name)) != nil else {
            throw LoomError.invalidParameter("name: a stored flow's name is 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let (saved, changed) = try await store.applyFlow(
            FlowVersion(workspace: workspace, name: spec.name, specText: yaml, createdBy: actor, creationTime: Clock.nowMillis()))
        return (saved, spec, changed)
    }

    /// `NAME` or `NAME@VERSION`, resolved.
    public func resolve(_ reference: String, workspace: String) async throws -> (FlowVersion, FlowSpec) {
        let (name, version) = try Self.split(reference)
        guard let found = try await store.flowVersion(workspace: workspace, name: name, version: version) else {
            if let version, try await store.flowVersion(workspace: workspace, name: name, version: nil) != nil {
                throw LoomError.notFound("Flow \(name) has no version \(version)")
            }
            throw LoomError.notFound("No flow named \(name) in workspace \(workspace)")
        }
        return (found, try FlowSpec.parse(yaml: found.specText))
    }

    public func list(workspace: String) async throws -> [FlowVersion] {
        try await store.flows(workspace: workspace)
    }

    public func versions(workspace: String, name: String) async throws -> [FlowVersion] {
        let all = try await store.flowVersions(workspace: workspace, name: name)
        guard !all.isEmpty else { throw LoomError.notFound("No flow named \(name) in workspace \(workspace)") }
        return all
    }

    public func delete(workspace: String, name: String) async throws {
        guard try await store.deleteFlow(workspace: workspace, name: name) else {
            throw LoomError.notFound("No flow named \(name) in workspace \(workspace)")
        }
    }

    static func split(_ reference: String) throws(LoomError) -> (String, Int64?) {
        let parts = reference.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard !parts[0].isEmpty else { throw .invalidParameter("flow: expected NAME or NAME@VERSION, got '\(reference)'") }
        guard parts.count == 2 else { return (parts[0], nil) }
        guard let v = Int64(parts[1]), v > 0 else { throw .invalidParameter("flow: expected NAME@<version number>, got '\(reference)'") }
        return (parts[0], v)
    }
}
