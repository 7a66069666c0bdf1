import LoomCore

/// What runs the flows of `flow` deployments (the server's flow runner; docs/flows.md,
/// "Serving a flow").
public protocol FlowInvoker: Sendable {
    /// `NAME` or `NAME@VERSION` of a stored flow, pinned to `NAME@VERSION`; refused when there
    /// is no such flow.
    func pin(flow reference: String, workspace: String) async throws -> String
    /// Runs the flow on one request (its JSON object: the inputs, or `{inputs, variants}`).
    func invoke(flow: String, workspace: String, request: ServingRequest, timeout: Duration) async throws -> ServingAnswer
    /// Runs a rollout's evaluation against a flow (a stored run): whether its gates passed, a
    /// line for the rollout's log, and the details as JSON.
    func evaluate(flow: String, evaluation: RolloutEvaluation, workspace: String) async throws -> (passed: Bool, summary: String, detail: String)
}

/// A deployment that answers with a stored flow, run in the server's process: its traffic
/// share, mirroring, rollouts and collection are an endpoint's like any other deployment's.
struct FlowRuntime: DeploymentRuntime {
    let invoker: any FlowInvoker
    let flow: String
    let workspace: String

    func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        try await invoker.invoke(flow: flow, workspace: workspace, request: request, timeout: timeout)
    }
}
