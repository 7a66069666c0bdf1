/// One edge of the lineage graph: `source` was used to make `target` (docs/lineage.md).
///
/// Nodes are named by text: `dataset:NAME@VERSION`, `model:NAME/VERSION` (a registered
/// version), `artifact:runs:/RUN/PATH` (a model or file a run stored), `file:PATH` (data read
/// from a path), `step:PIPELINE_RUN/STEP` (a step of a pipeline run), `deployment:ENDPOINT/NAME`
/// (a deployment of an online endpoint).
public struct LineageEdge: Sendable, Codable, Hashable {
    public var workspace: String
    public var source: String
    public var target: String
    /// How: `input:NAME` (into a step), `output:NAME` (out of one), `derived:clean` (a dataset
    /// operation), `trained` (data a model was trained on), `registered` (a stored model
    /// registered as a version), `deployed` (a model version served by a deployment).
    public var relation: String
    public var creationTime: Millis

    public init(workspace: String = Workspace.defaultName, source: String, target: String, relation: String, creationTime: Millis) {
        self.workspace = workspace
        self.source = source
        self.target = target
        self.relation = relation
        self.creationTime = creationTime
    }
}

/// Which way to follow lineage from a node.
public enum LineageDirection: String, Sendable, Codable, CaseIterable {
    /// What the node was made from.
    case upstream
    /// What was made from it.
    case downstream
}

/// The names of lineage nodes.
public enum LineageNodes {
    public static func dataset(_ name: String, _ version: Int64) -> String { "dataset:\(name)@\(version)" }
    public static func model(_ name: String, _ version: String) -> String { "model:\(name)/\(version)" }
    public static func artifact(_ uri: String) -> String { "artifact:\(uri)" }
    public static func file(_ path: String) -> String { "file:\(path)" }
    public static func step(_ pipelineRunID: String, _ step: String) -> String { "step:\(pipelineRunID)/\(step)" }
    public static func deployment(_ endpoint: String, _ name: String) -> String { "deployment:\(endpoint)/\(name)" }

    /// A node's kind: the text before the first `:`.
    public static func kind(_ node: String) -> String { String(node.prefix { $0 != ":" }) }
}
