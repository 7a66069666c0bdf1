import ArgumentParser
import Foundation
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomPipelines
import LoomServer
import LoomStore
import LoomTracking
import Logging
import ServiceLifecycle
import Synchronization

/// `loom pipeline`.
struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "Check, plan and run pipelines (docs/pipelines.md).",
        subcommands: [Validate.self, Plan.self, Run.self, Runs.self, Show.self, Logs.self, Cancel.self])

    /// Reads a spec file and parses it; a problem names the file, line and field.
    static func load(_ path: String) throws -> (PipelineSpec, parseSeconds: Double) {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoomError.notFound("No such file: \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw LoomError.invalidParameter("\(path) is not UTF-8 text") }
        let started = DispatchTime.now().uptimeNanoseconds
        let spec = try PipelineSpec.parse(yaml: text, file: path)
        return (spec, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate", abstract: "Check a pipeline spec without running it: every problem, with its line and field.",
            discussion: "Exits 1 and lists the problems when the spec cannot run; prints a summary when it can.")

        @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String

        func run() async throws {
            let (spec, _) = try PipelineCommand.load(file)
            let plan = try PipelinePlan(spec)
            print("\(file): pipeline \(spec.name): \(spec.steps.count) steps in \(plan.levelCount) levels, \(spec.parameters.count) parameters, \(spec.schedules.count) schedules, \(spec.triggers.count) triggers")
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan", abstract: "Print the order a pipeline's steps run in: levels of steps that may run at once.",
            discussion: "With --json, also the time parsing and planning took (planning_ms).")

        @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var pipeline: String
            var steps: Int
            var levels: [[String]]
            var parsingMs: Double
            var planningMs: Double
        }

        func run() async throws {
            let (spec, parseSeconds) = try PipelineCommand.load(file)
            let started = DispatchTime.now().uptimeNanoseconds
            let plan = try PipelinePlan(spec)
            let planSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            var levels = [[String]](repeating: [], count: plan.levelCount)
            for i in plan.order { levels[plan.levels[i]].append(spec.steps[i].name) }
            if output.json {
                try Output.json(Report(pipeline: spec.name, steps: spec.steps.count, levels: levels, parsingMs: parseSeconds * 1000, planningMs: planSeconds * 1000))
            } else {
                Output.table(["LEVEL", "STEPS"], levels.enumerated().map { [String($0.offset), $0.element.joined(separator: ", ")] })
            }
        }
    }
}

// MARK: Running

extension PipelineCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Run a pipeline here, on the embedded store or the one configured, and wait for it.",
            discussion: """
                Steps run in dependency order, independent ones at once (--concurrency). A step whose cache key \
                (definition, command, code files, parameters, environment, input digests) matches an earlier \
                successful step reuses its outputs. Command steps log through the mlflow client: a loopback \
                tracking server runs for the pipeline's duration and MLFLOW_TRACKING_URI points at it. \
                Ctrl-C cancels the run (its running commands are stopped). Exits 1 when the run fails.
                """)

        @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String
        @Option(name: .customLong("param"), help: ArgumentHelp("NAME=VALUE; repeatable.", valueName: "name=value")) var params: [String] = []
        @Flag(name: .customLong("no-cache"), help: "Run every step, reusing no earlier outputs.") var noCache = false
        @Option(help: "Steps that may run at once (default: the spec's, else the number of cores).") var concurrency: Int?
        @Flag(name: .long, help: "Print nothing while it runs, only the summary.") var quiet = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (spec, _) = try PipelineCommand.load(file)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            var given: [String: ParameterValue] = [:]
            for item in params {
                guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                    throw LoomError.invalidParameter("--param \(item): expected NAME=VALUE")
                }
                given[String(item[..<eq])] = .string(String(item[item.index(after: eq)...]))
            }
            if let concurrency, concurrency < 1 { throw LoomError.invalidParameter("--concurrency must be at least 1") }
            _ = try spec.resolveParameters(given)  // refuse bad parameters before opening anything
            let parameters = given

            let logger = cliLogger()
            let (tracking, resolved) = try await storage.open(logger: logger)
            let directory = URL(fileURLWithPath: file).standardizedFileURL.deletingLastPathComponent().path
            let result = try await PipelineCommand.withLoopbackServer(tracking: tracking, dataDirectory: resolved.dataDirectory, logger: logger) { uri in
                let runner = PipelineRunner(store: tracking.store, operations: TrackingStepOperations(tracking: tracking, trackingURI: uri), logger: logger)
                let run = try await AuditContext.$current.withValue(AuditContext(actor: NSUserName(), origin: "cli")) {
                    try await runner.submit(
                        spec: spec, text: text, parameters: parameters,
                        options: PipelineRunOptions(noCache: noCache, directory: directory, concurrency: concurrency))
                }
                if !quiet && !output.json { print("pipeline \(spec.name): run \(run.id) (\(spec.steps.count) steps)") }
                let interrupt = Interrupt { _ = try? await runner.cancel(runID: run.id, message: "cancelled from the command line") }
                defer { interrupt.stop() }
                return try await withThrowingTaskGroup(of: PipelineRun?.self) { group in
                    group.addTask {
                        try await AuditContext.$current.withValue(AuditContext(actor: NSUserName(), origin: "cli")) {
                            try await runner.execute(runID: run.id)
                        }
                    }
                    if !quiet && !output.json {
                        group.addTask {
                            await PipelineCommand.follow(run.id, spec: spec, store: tracking.store)
                            return nil
                        }
                    }
                    var finished: PipelineRun?
                    while let r = try await group.next() {
                        if let r {
                            finished = r
                            group.cancelAll()
                        }
                    }
                    return finished!
                }
            }
            let steps = try await tracking.store.stepRuns(pipelineRunID: result.id)
            if output.json {
                try Output.json(RunReport(run: result, steps: PipelineCommand.ordered(steps, spec)))
            } else {
                PipelineCommand.printSummary(result, PipelineCommand.ordered(steps, spec))
            }
            if result.state != .succeeded { throw ExitCode.failure }
        }
    }

    struct RunReport: Encodable {
        var run: PipelineRun
        var steps: [StepRun]
    }

    /// The steps in the spec's order (unknown ones last).
    static func ordered(_ steps: [StepRun], _ spec: PipelineSpec?) -> [StepRun] {
        guard let spec else { return steps }
        let index = Dictionary(spec.steps.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        return steps.sorted { (index[$0.step] ?? .max, $0.step) < (index[$1.step] ?? .max, $1.step) }
    }

    /// Prints each step's state as it changes, until cancelled.
    static func follow(_ runID: String, spec: PipelineSpec, store: any MetadataStore) async {
        var seen: [String: StepRun.State] = [:]
        while !Task.isCancelled {
            if let steps = try? await store.stepRuns(pipelineRunID: runID) {
                for s in ordered(steps, spec) where seen[s.step] != s.state {
                    seen[s.step] = s.state
                    guard s.state != .pending else { continue }
                    var line = "  \(Output.clock()) \(s.step): \(s.state.rawValue)"
                    if s.state == .running && s.attempts > 1 { line += " (attempt \(s.attempts))" }
                    if let d = duration(s), s.state.isFinished { line += " in \(d)" }
                    if let m = s.message, s.state != .succeeded { line += ": \(m)" }
                    print(line)
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    static func duration(_ s: StepRun) -> String? {
        guard let start = s.startTime, let end = s.endTime else { return nil }
        let seconds = Double(end - start) / 1000
        return seconds < 10 ? String(format: "%.2f s", seconds) : String(format: "%.1f s", seconds)
    }

    static func duration(_ run: PipelineRun) -> String {
        run.endTime.map { String(format: "%.2f s", Double($0 - run.startTime) / 1000) } ?? "-"
    }

    static func printSummary(_ run: PipelineRun, _ steps: [StepRun]) {
        let total = run.endTime.map { String(format: "%.2f s", Double($0 - run.startTime) / 1000) } ?? "-"
        print("\npipeline run \(run.id): \(run.state.rawValue) in \(total)\(run.message.map { ": \($0)" } ?? "")")
        Output.table(["STEP", "STATE", "ATTEMPTS", "DURATION", "RUN", "MESSAGE"], steps.map {
            [$0.step, $0.state.rawValue, String($0.attempts), duration($0) ?? "-", $0.trackingRunID ?? "-", $0.message ?? ""]
        })
    }

    /// Runs `body` with a tracking server on a free loopback port (auth off: only this machine
    /// reaches it), so that command steps' mlflow clients can log; `body` gets its URI.
    static func withLoopbackServer<T: Sendable>(
        tracking: TrackingService, dataDirectory: String, logger: Logger, _ body: @escaping @Sendable (String) async throws -> T
    ) async throws -> T {
        let access = AccessService(store: tracking.store)
        let services = ServerServices(
            tracking: tracking, access: access,
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, authEnabled: false, maxArtifactBytes: nil, dataDirectory: dataDirectory),
            logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: buildRouter(services: services),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "loom"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        // No signal handling here: Ctrl-C belongs to the pipeline run. The server stops
        // gracefully once `body` returns.
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await serviceGroup.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw LoomError.unavailable("the loopback tracking server did not start") }
            let outcome: Result<T, any Error>
            do {
                outcome = .success(try await body("http://127.0.0.1:\(port)"))
            } catch {
                outcome = .failure(error)
            }
            await serviceGroup.triggerGracefulShutdown()
            while try await group.next() != nil {}
            return try outcome.get()
        }
    }
}

/// Calls `action` on the first Ctrl-C (SIGINT); a second one exits at once.
final class Interrupt {
    private let source: any DispatchSourceSignal

    init(_ action: @escaping @Sendable () async -> Void) {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        let count = Mutex(0)
        source.setEventHandler {
            let n = count.withLock { c in c += 1; return c }
            if n > 1 { Foundation.exit(130) }
            FileHandle.standardError.write(Data("loom: cancelling the run (Ctrl-C again to quit at once)\n".utf8))
            Task { await action() }
        }
        source.resume()
        self.source = source
    }

    func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}

// MARK: Looking at runs

extension PipelineCommand {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "runs", abstract: "List a pipeline's runs, newest first.")
        @Argument(help: "The pipeline's name.") var pipeline: String
        @Option(help: "How many.") var limit = 20
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let runs = try await tracking.store.pipelineRuns(pipeline: pipeline, workspace: Workspace.defaultName, limit: max(1, min(limit, 1000)))
            if output.json { return try Output.json(runs) }
            Output.table(["RUN", "VERSION", "STATE", "TRIGGER", "STARTED", "DURATION", "MESSAGE"], runs.map {
                [$0.id, String($0.pipelineVersion), $0.state.rawValue, $0.trigger, Output.time($0.startTime),
                 PipelineCommand.duration($0), $0.message ?? ""]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A pipeline run and its steps.")
        @Argument(help: "The pipeline run's id.") var run: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            guard let found = try await tracking.store.pipelineRun(id: run) else { throw LoomError.notFound("No pipeline run \(run)") }
            let spec = try await PipelineCommand.spec(of: found, tracking.store)
            let steps = PipelineCommand.ordered(try await tracking.store.stepRuns(pipelineRunID: run), spec)
            if output.json { return try Output.json(RunReport(run: found, steps: steps)) }
            print("pipeline \(found.pipeline) version \(found.pipelineVersion), parameters \(found.parameters)")
            PipelineCommand.printSummary(found, steps)
        }
    }

    static func spec(of run: PipelineRun, _ store: any MetadataStore) async throws -> PipelineSpec? {
        guard let v = try await store.pipelineVersion(name: run.pipeline, version: run.pipelineVersion, workspace: run.workspace) else { return nil }
        return try? PipelineSpec.parse(yaml: v.spec)
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "logs", abstract: "Print a command step's standard output (or error), following it while it runs with -f.")
        @Argument(help: "The pipeline run's id.") var run: String
        @Argument(help: "The step.") var step: String
        @Flag(name: .long, help: "Standard error instead of standard output.") var stderr = false
        @Flag(name: .shortAndLong, help: "Keep printing what the step writes until it finishes.") var follow = false
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            guard let found = try await tracking.store.pipelineRun(id: run) else { throw LoomError.notFound("No pipeline run \(run)") }
            let stream = stderr ? "stderr" : "stdout"
            var offset: Int64 = 0
            var started = false
            while true {
                guard let row = try await tracking.store.stepRuns(pipelineRunID: run).first(where: { $0.step == step }) else {
                    throw LoomError.notFound("Pipeline run \(run) has no step \(step)")
                }
                if row.state == .cached, offset == 0 { print("(the step was cached: its outputs came from \(row.message ?? "an earlier run"))"); return }
                if row.state != .pending { started = true }
                let bytes = try await tracking.stepLog(found, row, stream: stream, from: offset)
                FileHandle.standardOutput.write(Data(bytes))
                offset += Int64(bytes.count)
                if !follow || row.state.isFinished { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            if !started { throw LoomError.notFound("Step \(step) of run \(run) has not started") }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel", abstract: "Cancel a pipeline run: its runner stops running steps within a second.")
        @Argument(help: "The pipeline run's id.") var run: String
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let runner = PipelineRunner(store: tracking.store, operations: TrackingStepOperations(tracking: tracking, trackingURI: nil), logger: cliLogger())
            if try await runner.cancel(runID: run, message: "cancelled by \(NSUserName())") {
                print("pipeline run \(run): cancelled")
            } else {
                print("pipeline run \(run) had already finished")
            }
        }
    }
}
