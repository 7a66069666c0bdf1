import Foundation
import LoomCore

/// A value that flows between steps, as a step run's `outputs` record it: what it is, and the
/// digest that the cache keys of the steps it feeds are made of.
public struct StepValue: Sendable, Codable, Hashable {
    public var type: ValueType
    /// A dataset `name@version`, a model URI (`runs:/ID/PATH`, `models:/NAME/VERSION`), a file's
    /// artifact URI, or a value's text.
    public var value: String
    /// A dataset's content digest, a model's or file's `sha256:` digest, or a value's text.
    public var digest: String

    public init(type: ValueType, value: String, digest: String) {
        self.type = type
        self.value = value
        self.digest = digest
    }

    /// Outputs as a step run stores them: a JSON object, output name to value.
    public static func encode(_ outputs: [String: StepValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(outputs)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func decode(_ text: String?) -> [String: StepValue] {
        guard let text, let outputs = try? JSONDecoder().decode([String: StepValue].self, from: Data(text.utf8)) else { return [:] }
        return outputs
    }
}

/// One attempt of one step, as the runner hands it to what performs it.
public struct StepInvocation: Sendable {
    public var pipeline: String
    public var pipelineRunID: String
    public var workspace: String
    public var step: PipelineSpec.Step
    /// The step's options with the run's parameters put in.
    public var options: [String: JSONValue]
    public var inputs: [String: StepValue]
    public var parameters: [String: ParameterValue]
    /// The tracking run of this attempt (nested under the pipeline run's).
    public var trackingRunID: String
    public var attempt: Int
    /// The folder command steps run in (the spec's).
    public var directory: String?
    /// Gates: the `name` of the register step that waits for this one (the model whose alias
    /// `compare` looks at, unless it names one).
    public var registeredName: String?

    public init(
        pipeline: String, pipelineRunID: String, workspace: String, step: PipelineSpec.Step, options: [String: JSONValue],
        inputs: [String: StepValue], parameters: [String: ParameterValue], trackingRunID: String, attempt: Int, directory: String?,
        registeredName: String? = nil
    ) {
        self.pipeline = pipeline
        self.pipelineRunID = pipelineRunID
        self.workspace = workspace
        self.step = step
        self.options = options
        self.inputs = inputs
        self.parameters = parameters
        self.trackingRunID = trackingRunID
        self.attempt = attempt
        self.directory = directory
        self.registeredName = registeredName
    }
}

/// A step that failed for a reason a retry cannot change (a gate that fell short, an input that
/// does not exist): the runner does not retry it.
public struct StepFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var retryable: Bool

    public init(_ message: String, retryable: Bool = false) {
        self.message = message
        self.retryable = retryable
    }

    public var description: String { message }
}

/// Where a command step's standard output or error goes while it runs.
public struct LogDestination: Sendable {
    /// The local file the process writes to (appended to).
    public var path: String
    /// True when `path` is the stored artifact itself (a local artifact store), so nothing is
    /// left to upload when the step ends.
    public var isStored: Bool

    public init(path: String, isStored: Bool) {
        self.path = path
        self.isStored = isStored
    }
}

/// What the runner needs from the rest of Loom: tracking runs, the built-in data and model
/// operations, and moving command steps' inputs and outputs in and out of the artifact store.
/// LoomTracking implements it over TrackingService.
public protocol StepOperations: Sendable {
    /// `MLFLOW_TRACKING_URI` for command steps (nil: not set, the program cannot log to its run).
    var trackingURI: String? { get }

    /// A literal or a parameter given where an input of `type` is expected: pinned (a dataset
    /// name to its newest version) and digested. Something that does not exist is a
    /// ``StepFailure``.
    func resolve(_ text: String, as type: ValueType, workspace: String, directory: String?) async throws -> StepValue

    /// Starts a tracking run: the pipeline run's (no parent) or a step attempt's.
    func startTrackingRun(experiment: String, name: String, parentRunID: String?, tags: [String: String]) async throws -> String
    /// Ends a tracking run: `FINISHED`, `FAILED` or `KILLED`.
    func endTrackingRun(id: String, status: String) async

    /// Runs a built-in kind (everything but `command`): the step's outputs.
    func perform(_ invocation: StepInvocation) async throws -> [String: StepValue]

    /// A local path holding an input for a command step (the stored file itself when the
    /// artifact store is local, else a copy under `staging`).
    func localPath(of value: StepValue, staging: String) async throws -> String
    /// Stores what a command step wrote for output `name` (a folder for datasets and models, a
    /// file for files and values) and says what it is.
    func commitOutput(name: String, type: ValueType, path: String, invocation: StepInvocation) async throws -> StepValue
    /// Where the attempt's `stdout.txt` / `stderr.txt` go while it runs.
    func logDestination(trackingRunID: String, name: String, staging: String) async throws -> LogDestination
    /// Stores a log file written to a destination that was not the stored artifact.
    func storeLog(trackingRunID: String, name: String, from path: String) async throws
}

/// What a worker runs for a command step (`loom worker`): the spec and the step's name, the
/// inputs pinned by the server, the run's parameters, and the cache key the result is recorded
/// under. Kept with the step while it waits (`StepRun.invocation`).
public struct WorkerInvocation: Sendable, Codable, Hashable {
    public var pipeline: String
    public var pipelineRunID: String
    public var workspace: String
    /// The pipeline version's YAML.
    public var spec: String
    public var step: String
    public var inputs: [String: StepValue]
    /// The run's parameters as stored (`ParameterValue.encode`).
    public var parameters: String
    public var cacheKey: String?

    enum CodingKeys: String, CodingKey {
        case pipeline, pipelineRunID = "pipeline_run_id", workspace, spec, step, inputs, parameters, cacheKey = "cache_key"
    }

    public init(pipeline: String, pipelineRunID: String, workspace: String, spec: String, step: String, inputs: [String: StepValue], parameters: String, cacheKey: String?) {
        self.pipeline = pipeline
        self.pipelineRunID = pipelineRunID
        self.workspace = workspace
        self.spec = spec
        self.step = step
        self.inputs = inputs
        self.parameters = parameters
        self.cacheKey = cacheKey
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func decode(_ text: String?) throws -> WorkerInvocation {
        guard let text, let value = try? JSONDecoder().decode(WorkerInvocation.self, from: Data(text.utf8)) else {
            throw LoomError.internalError("a step for workers has no readable invocation")
        }
        return value
    }

    /// The spec, its step and the parameters, parsed.
    public func parsed() throws -> (PipelineSpec, PipelineSpec.Step, [String: ParameterValue]) {
        let spec = try PipelineSpec.parse(yaml: self.spec, file: "\(pipeline)")
        guard let step = spec.step(self.step) else { throw LoomError.internalError("pipeline \(pipeline) has no step \(self.step)") }
        return (spec, step, try ParameterValue.decode(parameters, spec: spec))
    }
}
