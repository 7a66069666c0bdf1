import LoomCore
import LoomSpec

/// A pipeline as written in YAML (docs/pipelines.md): typed parameters, steps wired by their
/// inputs and outputs, schedules and triggers. Made by `PipelineSpec.parse`, which checks it
/// whole before anything runs.
public struct PipelineSpec: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var parameters: [Parameter]
    /// In the order the file lists them.
    public var steps: [Step]
    /// Steps that may run at once (nil: the runner's default).
    public var concurrency: Int?
    public var schedules: [Schedule]
    public var triggers: [Trigger]

    public func step(_ name: String) -> Step? { steps.first { $0.name == name } }
    public func parameter(_ name: String) -> Parameter? { parameters.first { $0.name == name } }
}

/// What flows between steps, and what parameters hold.
public enum ValueType: String, Sendable, Hashable, Codable, CaseIterable {
    case dataset, model, file, string, number, integer, boolean

    /// Whether a value of type `other` may be given where this type is expected (an integer
    /// is a number).
    public func accepts(_ other: ValueType) -> Bool {
        self == other || (self == .number && other == .integer)
    }

    var article: String { self == .integer ? "an integer" : "a \(rawValue)" }
}

/// A scalar parameter value (datasets and models are named by text: `customers@3`,
/// `models:/churn@production`).
public enum ParameterValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case integer(Int)
    case boolean(Bool)

    public var type: ValueType {
        switch self {
        case .string: return .string
        case .number: return .number
        case .integer: return .integer
        case .boolean: return .boolean
        }
    }

    public var text: String {
        switch self {
        case .string(let s): return s
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .integer(let i): return String(i)
        case .boolean(let b): return b ? "true" : "false"
        }
    }
}

extension PipelineSpec {
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var type: ValueType
        /// Nil: the run must give one.
        public var defaultValue: ParameterValue?
        public var description: String?
        public var line: Int
    }

    public struct Step: Sendable, Equatable {
        public var name: String
        public var kind: StepKind
        /// Input name to what feeds it, in the file's order.
        public var inputs: [Input]
        /// Output name to type: declared (command steps) or the kind's.
        public var outputs: [Output]
        /// The kind's options, with `${{ parameters.x }}` left in place until a run.
        public var options: [String: JSONValue]
        /// Command steps: the command line, with `${{ inputs.x }}`, `${{ outputs.x }}` and
        /// `${{ parameters.x }}` replaced when it runs.
        public var command: String?
        /// Files the command reads whose content belongs in the cache key (relative to the spec).
        public var code: [String]
        public var environment: [String: String]
        /// Steps that must finish first without passing anything (besides those inputs name).
        public var needs: [String]
        public var cache: Bool
        public var retries: Int
        /// Seconds before the first retry; doubled for each next one.
        public var retryDelay: Double
        /// Seconds, or nil for no limit.
        public var timeout: Double?
        public var line: Int

        public func input(_ name: String) -> Input? { inputs.first { $0.name == name } }
        public func output(_ name: String) -> Output? { outputs.first { $0.name == name } }
    }

    public struct Input: Sendable, Hashable {
        public var name: String
        public var source: Source
        /// Declared (`{type: ..., from: ...}`) or the kind's; nil: taken from the source.
        public var type: ValueType?
        public var line: Int
    }

    public struct Output: Sendable, Hashable {
        public var name: String
        public var type: ValueType
    }

    /// What feeds an input.
    public enum Source: Sendable, Hashable, CustomStringConvertible {
        /// `${{ steps.NAME.outputs.OUTPUT }}`
        case step(String, output: String)
        /// `${{ parameters.NAME }}`
        case parameter(String)
        /// Anything else: a dataset (`name@version`), a model URI, a path or a value, as written.
        case literal(String)

        public var description: String {
            switch self {
            case .step(let s, let o): return "steps.\(s).outputs.\(o)"
            case .parameter(let p): return "parameters.\(p)"
            case .literal(let l): return l
            }
        }
    }

    public struct Schedule: Sendable, Hashable {
        public var cron: CronSchedule
        public var parameters: [String: ParameterValue]
        public var line: Int
    }

    public struct Trigger: Sendable, Hashable {
        public enum Event: Sendable, Hashable {
            /// A new version of the named dataset; `parameter` (a dataset parameter) gets it.
            case dataset(String, parameter: String?)
            /// A call to `POST /api/v1/pipelines/{name}/hooks/{hook}`.
            case webhook(String)
            /// An alert of the named monitor.
            case alert(String)
        }
        public var event: Event
        public var parameters: [String: ParameterValue]
        public var line: Int
    }
}

/// What a step does: a built-in data or model operation, a program, a registration or a gate.
public enum StepKind: String, Sendable, Hashable, CaseIterable {
    /// Registers a file or folder as a dataset version.
    case ingest
    /// Checks a dataset against expectations; passes the same version on.
    case validate
    case clean
    case transform
    case split
    /// Trains a built-in model family on a dataset.
    case train
    /// Scores a model on a dataset: metrics.
    case evaluate
    /// Runs any program, its inputs and outputs given as paths and environment variables.
    case command
    /// Registers a model version, optionally under an alias.
    case register
    /// Compares metrics with thresholds or with the model holding an alias, or runs an
    /// evaluation of a flow and checks its gates; stops what depends on it when they fall short.
    case gate

    /// The inputs the kind takes (name, type, required), nil for `command` (declared).
    var inputs: [(name: String, type: ValueType, required: Bool)]? {
        switch self {
        case .ingest: return []
        case .validate, .clean, .transform, .split: return [("data", .dataset, true)]
        case .train: return [("data", .dataset, true), ("validation", .dataset, false)]
        case .evaluate: return [("model", .model, true), ("data", .dataset, true)]
        case .register: return [("model", .model, true)]
        case .gate: return [("model", .model, false), ("metrics", .file, false), ("data", .dataset, false)]
        case .command: return nil
        }
    }

    /// The outputs the kind makes, nil for `command` (declared).
    var outputs: [PipelineSpec.Output]? {
        switch self {
        case .ingest, .clean, .transform: return [.init(name: "data", type: .dataset)]
        case .validate: return [.init(name: "data", type: .dataset), .init(name: "report", type: .file)]
        case .split: return ["train", "validation", "test"].map { .init(name: $0, type: .dataset) }
        case .train: return [.init(name: "model", type: .model)]
        case .evaluate: return [.init(name: "metrics", type: .file)]
        case .register: return [.init(name: "model", type: .model)]
        case .gate: return []
        case .command: return nil
        }
    }

    /// The options (`with:`) the kind takes, and those it needs.
    var options: (allowed: Set<String>, required: Set<String>) {
        switch self {
        case .ingest: return (["path", "dataset"], ["path", "dataset"])
        case .validate: return (["expectations"], ["expectations"])
        case .clean: return (["dataset", "trim", "cast", "impute", "drop_missing", "dedupe", "drop"], [])
        case .transform: return (["dataset", "spec"], ["spec"])
        case .split: return (["dataset", "shares", "seed", "stratify"], [])
        case .train:
            return (["target", "model", "features", "l2", "learning_rate", "max_iterations", "max_depth", "max_leaf_nodes",
                     "min_samples_leaf", "early_stopping", "seed", "experiment", "holdout"], ["target", "model"])
        case .evaluate: return (["target"], [])
        case .command: return ([], [])
        case .register: return (["name", "alias", "description"], ["name"])
        case .gate: return (["metrics", "compare", "evaluation", "flow", "dataset", "fail_under", "variant"], [])
        }
    }
}
