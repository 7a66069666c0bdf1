/// One evaluation run (docs/evaluation.md): an evaluation spec and its flow, the rows it runs
/// over, and how far it got. Its results are `EvaluationRowRecord`s, written as rows finish,
/// so that a run that stopped half way resumes where it stopped.
public struct EvaluationRunRecord: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable, Hashable {
        /// Rows are being run (by the replica whose heartbeat is fresh).
        case running
        /// Every row of every variant has a result.
        case finished
        /// The run stopped on an error of its own (not a row's): see `error`.
        case failed
    }

    public var id: String
    public var workspace: String
    /// The spec's name.
    public var name: String
    public var status: Status
    public var createdBy: String
    public var creationTime: Millis
    /// Refreshed while the run runs: a `running` run whose heartbeat is old was interrupted.
    public var heartbeatTime: Millis
    public var endTime: Millis?
    public var specText: String
    public var flowText: String
    /// The stored flow it ran (`NAME@VERSION`), when it ran one.
    public var flowRef: String?
    /// Where the rows came from: a registered dataset version (`NAME@VERSION`) or `inline`.
    public var dataset: String
    /// The rows, as JSON Lines (empty in lists).
    public var rowsText: String
    public var rowCount: Int64
    /// The gates that replace the spec's `fail_under`.
    public var failUnder: String?
    /// Whether every gate of every variant passed, once finished.
    public var passed: Bool?
    public var error: String?

    public init(
        id: String, workspace: String, name: String, status: Status = .running, createdBy: String, creationTime: Millis, heartbeatTime: Millis? = nil,
        endTime: Millis? = nil, specText: String, flowText: String, flowRef: String? = nil, dataset: String, rowsText: String, rowCount: Int64,
        failUnder: String? = nil, passed: Bool? = nil, error: String? = nil
    ) {
        self.id = id
        self.workspace = workspace
        self.name = name
        self.status = status
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.heartbeatTime = heartbeatTime ?? creationTime
        self.endTime = endTime
        self.specText = specText
        self.flowText = flowText
        self.flowRef = flowRef
        self.dataset = dataset
        self.rowsText = rowsText
        self.rowCount = rowCount
        self.failUnder = failUnder
        self.passed = passed
        self.error = error
    }
}

/// One row's result in one variant of an evaluation run.
public struct EvaluationRowRecord: Sendable, Codable, Hashable {
    public var runId: String
    public var variant: String
    /// 1-based, in the dataset's order.
    public var row: Int64
    public var question: String
    public var answer: String?
    public var traceId: String?
    public var latencyMs: Double
    public var error: String?
    /// JSON: the evaluators' results.
    public var scores: String

    public init(
        runId: String, variant: String, row: Int64, question: String, answer: String? = nil, traceId: String? = nil, latencyMs: Double = 0,
        error: String? = nil, scores: String = "[]"
    ) {
        self.runId = runId
        self.variant = variant
        self.row = row
        self.question = question
        self.answer = answer
        self.traceId = traceId
        self.latencyMs = latencyMs
        self.error = error
        self.scores = scores
    }
}

/// A flow (docs/flows.md) applied to a workspace from YAML (`kind: flow`): each changed text is
/// a new immutable version; runs, evaluations and endpoints name `NAME` (the newest) or
/// `NAME@VERSION`.
public struct FlowVersion: Sendable, Codable, Hashable {
    public var workspace: String
    public var name: String
    public var version: Int64
    public var specText: String
    public var createdBy: String
    public var creationTime: Millis

    public init(workspace: String, name: String, version: Int64 = 0, specText: String, createdBy: String, creationTime: Millis) {
        self.workspace = workspace
        self.name = name
        self.version = version
        self.specText = specText
        self.createdBy = createdBy
        self.creationTime = creationTime
    }
}
