import Crypto
import Foundation
import LoomCore
import LoomStore
import Logging
import Synchronization

/// Runs pipeline runs: records them (`submit`), then runs their steps in dependency order,
/// independent steps at once up to a limit (`execute`). Every state change is written to the
/// store before the next one happens, so a run that a stopped runner left behind resumes where
/// it was (`execute` again, by this or another runner): finished steps stay finished, a step
/// that was running is taken over once its lease expires.
///
/// For each step whose dependencies succeeded: the inputs are pinned and digested, the cache key
/// is computed, and a step that succeeded earlier with the same key has its outputs reused
/// (`cached`) unless the run or the step turns caching off. Otherwise the runner leases the step,
/// starts a tracking run nested under the pipeline run's, and runs it, renewing the lease every
/// third of its length; a timeout or a lost lease stops it. A failure with retries left is
/// retried after a delay that doubles each time; one without marks the step `failed` and every
/// step that depends on it `skipped`, while independent branches go on.
public struct PipelineRunner: Sendable {
    public let store: any MetadataStore
    public let operations: any StepOperations
    /// Who holds the leases this runner takes.
    public let owner: String
    /// How long a lease lasts without a renewal, in seconds.
    public var leaseSeconds: Double
    /// Steps at once when neither the run nor the spec says.
    public var defaultConcurrency: Int
    /// How often a run's state is checked for a cancellation from elsewhere, in seconds.
    public var pollSeconds: Double
    public let logger: Logger
    /// Runs whose steps another process (a worker) just finished: their ticks come at once.
    let nudges = Nudges()

    public init(
        store: any MetadataStore, operations: any StepOperations, owner: String = "runner-" + String(Identifiers.newHexID().prefix(12)),
        leaseSeconds: Double = 30, defaultConcurrency: Int = max(2, ProcessInfo.processInfo.activeProcessorCount), pollSeconds: Double = 1,
        logger: Logger
    ) {
        self.store = store
        self.operations = operations
        self.owner = owner
        self.leaseSeconds = leaseSeconds
        self.defaultConcurrency = defaultConcurrency
        self.pollSeconds = pollSeconds
        self.logger = logger
    }

    static func now() -> Millis { Clock.nowMillis() }

    /// Says that a step of `runID` finished elsewhere (a worker reported it), so that the run's
    /// executor looks now rather than at its next tick.
    public func nudge(runID: String) { nudges.set(runID) }

    // MARK: Submitting

    /// Records a run of `spec` (its `text` saved as a version of the pipeline) with `parameters`
    /// (the spec's defaults for those not given; unknown names and wrong types refused), queued.
    public func submit(
        spec: PipelineSpec, text: String, parameters given: [String: ParameterValue], options: PipelineRunOptions = .init(),
        trigger: String = "manual", workspace: String? = nil, id: String = Identifiers.newHexID()
    ) async throws -> PipelineRun {
        let parameters = try spec.resolveParameters(given)
        _ = try PipelinePlan(spec)
        if let c = options.concurrency, c < 1 { throw LoomError.invalidParameter("concurrency must be at least 1") }
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        let actor = AuditContext.current.actor
        let (version, _) = try await store.recordPipelineVersion(spec, text: text, workspace: workspace, actor: actor)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let run = PipelineRun(
            id: id, workspace: workspace, pipeline: spec.name, pipelineVersion: version.version,
            parameters: ParameterValue.encode(parameters), options: String(decoding: try encoder.encode(options), as: UTF8.self),
            trigger: trigger, createdBy: actor, startTime: Self.now())
        try await store.createPipelineRun(run, steps: spec.steps.map(\.name))
        return run
    }

    /// Asks a run to stop: it is marked `cancelled` at once; the runner executing it notices
    /// within `pollSeconds`, stops its running steps and marks the rest `cancelled`. False when
    /// the run had finished.
    public func cancel(runID: String, message: String = "cancelled") async throws -> Bool {
        guard try await store.pipelineRun(id: runID) != nil else { throw LoomError.notFound("No pipeline run \(runID)") }
        return try await store.setPipelineRunState(id: runID, state: .cancelled, message: message, trackingRunID: nil, at: Self.now())
    }

    // MARK: Executing

    /// Runs (or resumes) a run until every step has finished, and returns it finished. When the
    /// calling task is cancelled (the server stops), running steps are given back unfinished
    /// and the run stays `running`, to be resumed.
    public func execute(runID: String) async throws -> PipelineRun {
        guard let run = try await store.pipelineRun(id: runID) else { throw LoomError.notFound("No pipeline run \(runID)") }
        if run.state.isFinished { return run }
        // Everything the run records is recorded as its creator, in its workspace.
        let context = AuditContext(actor: run.createdBy, workspace: run.workspace, origin: "pipeline run \(run.id)")
        return try await AuditContext.$current.withValue(context) { try await executeRecorded(run) }
    }

    private func executeRecorded(_ run: PipelineRun) async throws -> PipelineRun {
        let runID = run.id
        guard let version = try await store.pipelineVersion(name: run.pipeline, version: run.pipelineVersion, workspace: run.workspace) else {
            throw LoomError.notFound("Pipeline \(run.pipeline) has no version \(run.pipelineVersion)")
        }
        let spec = try PipelineSpec.parse(yaml: version.spec, file: "\(run.pipeline) version \(run.pipelineVersion)")
        let plan = try PipelinePlan(spec)
        let options = (try? JSONDecoder().decode(PipelineRunOptions.self, from: Data(run.options.utf8))) ?? PipelineRunOptions()
        let parameters = try ParameterValue.decode(run.parameters, spec: spec)
        var trackingRunID = run.trackingRunID
        if trackingRunID == nil {
            trackingRunID = try await operations.startTrackingRun(
                experiment: spec.name, name: "\(spec.name)-\(run.id.prefix(8))", parentRunID: nil,
                tags: ["loom.pipeline": spec.name, "loom.pipeline.run": run.id, "loom.pipeline.version": String(run.pipelineVersion),
                       "loom.pipeline.trigger": run.trigger])
        }
        _ = try await store.setPipelineRunState(id: run.id, state: .running, message: nil, trackingRunID: trackingRunID, at: Self.now())
        let execution = Execution(
            runner: self, run: run, spec: spec, plan: plan, options: options, parameters: parameters, trackingRunID: trackingRunID!,
            specText: version.spec)
        try await execution.run()
        // Read even when this task was cancelled (a stopping runner reports the run as it left it).
        let store = self.store
        guard let finished = try await Execution.uncancelled({ try await store.pipelineRun(id: run.id) }) else {
            throw LoomError.notFound("No pipeline run \(runID)")
        }
        return finished
    }
}

/// One run being executed: what the scheduling loop knows about its steps.
private struct Execution: Sendable {
    let runner: PipelineRunner
    let run: PipelineRun
    let spec: PipelineSpec
    let plan: PipelinePlan
    let options: PipelineRunOptions
    let parameters: [String: ParameterValue]
    let trackingRunID: String
    /// The spec as written (what workers get).
    let specText: String
    /// Set when the run was cancelled (not when the runner stops): running steps end `cancelled`.
    let cancelled = Flag()

    var store: any MetadataStore { runner.store }

    enum Event: Sendable {
        case step(Int, StepOutcome)
        case tick
    }

    enum StepOutcome: Sendable {
        /// The step finished (its row as recorded).
        case finished(StepRun)
        /// Another runner holds its lease.
        case busy
        /// Put up for workers: ready until one finishes it.
        case handedOut
        /// Given back unfinished (the runner stops).
        case released
    }

    func run() async throws {
        let count = spec.steps.count
        var states = [StepRun](repeating: StepRun(pipelineRunID: run.id, step: ""), count: count)
        let stored = Dictionary(try await store.stepRuns(pipelineRunID: run.id).map { ($0.step, $0) }, uniquingKeysWith: { a, _ in a })
        for (i, step) in spec.steps.enumerated() {
            guard let row = stored[step.name] else { throw LoomError.internalError("pipeline run \(run.id) has no row for step \(step.name)") }
            states[i] = row
        }
        // Steps wait for the dependencies that have not succeeded yet.
        var waiting = [Int](repeating: 0, count: count)
        var ready: [Int] = []
        var blocked: [Int] = []
        for i in plan.order {
            let deps = plan.dependencies[i]
            waiting[i] = deps.filter { !Self.passed(states[$0].state) }.count
            if states[i].state.isFinished { continue }
            if deps.contains(where: { states[$0].state.isFinished && !Self.passed(states[$0].state) }) {
                blocked.append(i)
            } else if waiting[i] == 0 {
                ready.append(i)
            }
        }
        for i in blocked where !states[i].state.isFinished {
            let failed = plan.dependencies[i].first { states[$0].state.isFinished && !Self.passed(states[$0].state) }!
            await skip(from: i, because: failed, states: &states)
        }
        ready.reverse()  // popped from the end: the plan's order
        let limit = max(1, options.concurrency ?? spec.concurrency ?? runner.defaultConcurrency)
        var inFlight = 0
        var busy: Set<Int> = []
        var handedOut: Set<Int> = []
        var outputs: [String: [String: StepValue]] = [:]
        for (i, s) in states.enumerated() where Self.passed(s.state) { outputs[spec.steps[i].name] = StepValue.decode(s.outputs) }
        var stopping = false

        /// Records a finished step and readies what waited for it.
        func complete(_ i: Int, _ row: StepRun) async {
            states[i] = row
            if Self.passed(row.state) {
                outputs[spec.steps[i].name] = StepValue.decode(row.outputs)
                for d in plan.dependents[i] {
                    waiting[d] -= 1
                    if waiting[d] == 0, !states[d].state.isFinished { ready.insert(d, at: 0) }
                }
                // Keep the plan's order among ready steps.
                ready.sort { plan.levels[$0] != plan.levels[$1] ? plan.levels[$0] > plan.levels[$1] : $0 > $1 }
            } else if row.state == .failed || row.state == .skipped {
                await skip(from: i, because: i, states: &states)
            }
        }

        await withTaskGroup(of: Event.self) { group in
            var ticking = false
            func launch() {
                while !stopping, inFlight < limit, let i = ready.popLast() {
                    inFlight += 1
                    // Only what the step's dependencies made (not every output so far).
                    var upstream: [String: [String: StepValue]] = [:]
                    for d in plan.dependencies[i] { upstream[spec.steps[d].name] = outputs[spec.steps[d].name] }
                    let given = upstream
                    group.addTask { .step(i, await runStep(i, upstream: given)) }
                }
                if !ticking, !stopping || inFlight > 0 {
                    ticking = true
                    let seconds = runner.pollSeconds
                    let nudges = runner.nudges
                    let id = run.id
                    group.addTask {
                        // A tick every `pollSeconds`, or sooner when nudged.
                        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                        while ContinuousClock.now < deadline, !nudges.take(id) {
                            try? await Task.sleep(for: .milliseconds(min(20, Int(seconds * 1000))))
                            if Task.isCancelled { break }
                        }
                        return .tick
                    }
                }
            }
            launch()
            while inFlight > 0 || !ready.isEmpty || !busy.isEmpty {
                guard let event = await group.next() else { break }
                switch event {
                case .tick:
                    ticking = false
                    if Task.isCancelled {
                        stopping = true
                    } else if !cancelled.value, let current = try? await store.pipelineRun(id: run.id), current.state == .cancelled {
                        cancelled.set()
                        stopping = true
                        group.cancelAll()
                    }
                    if stopping {
                        busy.removeAll()
                        ready.removeAll()
                    } else if !busy.isEmpty {
                        // Steps another runner held: done by it meanwhile, or to try again (their
                        // lease may have expired).
                        let rows = Dictionary(((try? await store.stepRuns(pipelineRunID: run.id)) ?? []).map { ($0.step, $0) }, uniquingKeysWith: { a, _ in a })
                        for i in busy.sorted(by: >) {
                            let row = rows[spec.steps[i].name]
                            if let row, row.state.isFinished {
                                busy.remove(i)
                                await complete(i, row)
                            } else if handedOut.contains(i), let row, row.state != .pending {
                                continue  // a worker's still: its inputs and cache key stand
                            } else {
                                busy.remove(i)
                                ready.append(i)
                            }
                        }
                    }
                case .step(let i, let outcome):
                    inFlight -= 1
                    switch outcome {
                    case .busy:
                        busy.insert(i)
                    case .handedOut:
                        busy.insert(i)
                        handedOut.insert(i)
                    case .released:
                        stopping = true
                    case .finished(let row):
                        await complete(i, row)
                    }
                }
                if Task.isCancelled && !stopping {
                    stopping = true
                    group.cancelAll()
                }
                launch()
                if stopping && inFlight == 0 { break }
            }
            group.cancelAll()
        }

        if cancelled.value {
            for (i, s) in states.enumerated() where !s.state.isFinished {
                _ = try? await store.finishStep(
                    pipelineRunID: run.id, step: spec.steps[i].name, owner: nil, state: .cancelled, outputs: nil, cacheKey: nil,
                    trackingRunID: nil, message: "the run was cancelled", at: PipelineRunner.now())
            }
            await runner.operations.endTrackingRun(id: trackingRunID, status: "KILLED")
            return
        }
        if stopping || Task.isCancelled { return }  // the runner stops; the run resumes later
        let failed = states.enumerated().filter { $0.element.state == .failed }
        if let first = failed.first {
            let skipped = states.filter { $0.state == .skipped }.count
            var message = "step \(spec.steps[first.offset].name) failed: \(first.element.message ?? "no message")"
            if failed.count > 1 { message += " (and \(failed.count - 1) more failed step\(failed.count == 2 ? "" : "s"))" }
            if skipped > 0 { message += "; \(skipped) step\(skipped == 1 ? "" : "s") skipped" }
            _ = try await store.setPipelineRunState(id: run.id, state: .failed, message: message, trackingRunID: nil, at: PipelineRunner.now())
            await runner.operations.endTrackingRun(id: trackingRunID, status: "FAILED")
        } else {
            _ = try await store.setPipelineRunState(id: run.id, state: .succeeded, message: nil, trackingRunID: nil, at: PipelineRunner.now())
            await runner.operations.endTrackingRun(id: trackingRunID, status: "FINISHED")
        }
    }

    static func passed(_ state: StepRun.State) -> Bool { state == .succeeded || state == .cached }

    /// Marks every unfinished step downstream of `i` skipped, naming the step that failed.
    func skip(from i: Int, because failed: Int, states: inout [StepRun]) async {
        var stack = i == failed ? plan.dependents[i] : [i]
        var seen: Set<Int> = []
        let reason = states[failed].state == .failed ? "step \(spec.steps[failed].name) failed" : "step \(spec.steps[failed].name) did not run"
        while let d = stack.popLast() {
            guard seen.insert(d).inserted, !states[d].state.isFinished else { continue }
            let at = PipelineRunner.now()
            let recorded = (try? await store.finishStep(
                pipelineRunID: run.id, step: spec.steps[d].name, owner: nil, state: .skipped, outputs: nil, cacheKey: nil,
                trackingRunID: nil, message: "skipped: \(reason)", at: at)) ?? false
            if recorded {
                states[d].state = .skipped
                states[d].message = "skipped: \(reason)"
                states[d].endTime = at
            }
            stack.append(contentsOf: plan.dependents[d])
        }
    }

    // MARK: One step

    func runStep(_ i: Int, upstream: [String: [String: StepValue]]) async -> StepOutcome {
        let step = spec.steps[i]
        let inputs: [String: StepValue]
        let key: String
        do {
            inputs = try await resolveInputs(step, upstream: upstream)
            key = try await cacheKey(step, inputs: inputs)
        } catch {
            return await finishUnleased(step, state: .failed, message: Self.message(error))
        }
        // Gates and registrations read and move the registry's current state (aliases): they
        // always run.
        let cacheable = !options.noCache && step.cache && step.kind != .gate && step.kind != .register
        if cacheable, let hit = try? await store.cachedStepRun(cacheKey: key, workspace: run.workspace) {
            let at = PipelineRunner.now()
            let message = "outputs of pipeline run \(hit.pipelineRunID)"
            if (try? await store.finishStep(
                pipelineRunID: run.id, step: step.name, owner: nil, state: .cached, outputs: hit.outputs, cacheKey: key,
                trackingRunID: hit.trackingRunID, message: message, at: at)) == true {
                await recordLineage(step, inputs: inputs, outputs: StepValue.decode(hit.outputs))
                var row = StepRun(pipelineRunID: run.id, step: step.name, state: .cached, cacheKey: key, outputs: hit.outputs, trackingRunID: hit.trackingRunID, message: message)
                row.startTime = at
                row.endTime = at
                return .finished(row)
            }
        }
        if options.workers && step.kind == .command {
            // A worker runs it: put it up (once) and wait for whoever leases it to finish it.
            let invocation = WorkerInvocation(
                pipeline: spec.name, pipelineRunID: run.id, workspace: run.workspace, spec: specText, step: step.name, inputs: inputs,
                parameters: run.parameters, cacheKey: key)
            let readied = (try? await store.readyStep(pipelineRunID: run.id, step: step.name, invocation: invocation.json, cacheKey: key, notBefore: nil)) ?? false
            return readied ? .handedOut : .busy
        }
        let lease = { PipelineRunner.now() + Millis(runner.leaseSeconds * 1000) }
        guard var leased = try? await store.leaseStep(pipelineRunID: run.id, step: step.name, owner: runner.owner, until: lease(), now: PipelineRunner.now()) else {
            return .busy
        }
        while true {
            let attempt = leased.attempts
            let stepRunID: String
            do {
                stepRunID = try await runner.operations.startTrackingRun(
                    experiment: spec.name, name: step.name, parentRunID: trackingRunID,
                    tags: ["mlflow.parentRunId": trackingRunID, "loom.pipeline": spec.name, "loom.pipeline.run": run.id,
                           "loom.pipeline.step": step.name, "loom.pipeline.attempt": String(attempt), "loom.pipeline.step.kind": step.kind.rawValue])
            } catch {
                return await finishLeased(step, state: .failed, outputs: nil, key: key, trackingRunID: nil, message: Self.message(error))
            }
            let invocation = StepInvocation(
                pipeline: spec.name, pipelineRunID: run.id, workspace: run.workspace, step: step,
                options: Substitution.options(step.options, parameters: parameters), inputs: inputs, parameters: parameters,
                trackingRunID: stepRunID, attempt: attempt, directory: options.directory,
                registeredName: step.kind == .gate ? registeredName(after: i) : nil)
            let operations = runner.operations
            let result = await holdingLease(step, timeout: step.timeout) {
                if step.kind == .command {
                    return try await CommandStep(invocation: invocation, operations: operations).run()
                }
                return try await operations.perform(invocation)
            }
            switch result {
            case .success(let produced):
                await operations.endTrackingRun(id: stepRunID, status: "FINISHED")
                await recordLineage(step, inputs: inputs, outputs: produced)
                return await finishLeased(step, state: .succeeded, outputs: StepValue.encode(produced), key: key, trackingRunID: stepRunID, message: nil)
            case .failure(let error):
                if error is LeaseLost {
                    await operations.endTrackingRun(id: stepRunID, status: "FAILED")
                    return .busy
                }
                if error is CancellationError || Task.isCancelled {
                    await operations.endTrackingRun(id: stepRunID, status: "KILLED")
                    if cancelled.value {
                        return await finishLeased(step, state: .cancelled, outputs: nil, key: key, trackingRunID: stepRunID, message: "the run was cancelled")
                    }
                    _ = try? await Self.uncancelled {
                        try await store.releaseStep(pipelineRunID: run.id, step: step.name, owner: runner.owner, message: "the runner stopped")
                    }
                    return .released
                }
                await operations.endTrackingRun(id: stepRunID, status: "FAILED")
                let message = Self.message(error)
                let retryable = (error as? StepFailure)?.retryable ?? !(error is LoomError)
                guard retryable, attempt <= step.retries else {
                    let tried = attempt > 1 ? " (after \(attempt) attempts)" : ""
                    return await finishLeased(step, state: .failed, outputs: nil, key: key, trackingRunID: stepRunID, message: message + tried)
                }
                let delay = step.retryDelay * pow(2, Double(attempt - 1))
                runner.logger.notice("step failed; retrying", metadata: [
                    "pipeline_run": "\(run.id)", "step": "\(step.name)", "attempt": "\(attempt)", "delay_s": "\(delay)", "error": "\(message)"])
                let waited = await holdingLease(step, timeout: nil) {
                    try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                    return [:]
                }
                if case .failure(let e) = waited {
                    if e is LeaseLost { return .busy }
                    if cancelled.value {
                        return await finishLeased(step, state: .cancelled, outputs: nil, key: key, trackingRunID: stepRunID, message: "the run was cancelled")
                    }
                    _ = try? await Self.uncancelled {
                        try await store.releaseStep(pipelineRunID: run.id, step: step.name, owner: runner.owner, message: "the runner stopped")
                    }
                    return .released
                }
                guard (try? await store.releaseStep(pipelineRunID: run.id, step: step.name, owner: runner.owner, message: message)) == true,
                    let again = try? await store.leaseStep(pipelineRunID: run.id, step: step.name, owner: runner.owner, until: lease(), now: PipelineRunner.now())
                else { return .busy }
                leased = again
            }
        }
    }

    /// The model name of the first register step that depends on step `i`.
    func registeredName(after i: Int) -> String? {
        for d in plan.dependents[i] where spec.steps[d].kind == .register {
            if case .string(let name)? = Substitution.options(spec.steps[d].options, parameters: parameters)["name"] { return name }
        }
        return nil
    }

    /// Lineage edges of a step that produced (or reused) its outputs: each dataset, model or
    /// file input into the step, the step into each such output.
    func recordLineage(_ step: PipelineSpec.Step, inputs: [String: StepValue], outputs: [String: StepValue]) async {
        let edges = PipelineRunner.lineageEdges(
            run: run, step: step, inputs: inputs, outputs: outputs, parameters: parameters, directory: options.directory)
        // Outputs stay valid without their lineage: a failure to record it is logged, not fatal.
        do {
            try await Self.uncancelled { [store, edges] in try await store.addLineageEdges(edges) }
        } catch {
            runner.logger.warning("could not record a step's lineage", metadata: ["pipeline_run": "\(run.id)", "step": "\(step.name)", "error": "\(error)"])
        }
    }

    static func lineageNode(_ value: StepValue) -> String? { PipelineRunner.lineageNode(value) }

    struct LeaseLost: Error {}

    /// Runs `body` while renewing the step's lease; stops it when the lease is lost or `timeout`
    /// passes.
    func holdingLease(
        _ step: PipelineSpec.Step, timeout: Double?, _ body: @escaping @Sendable () async throws -> [String: StepValue]
    ) async -> Result<[String: StepValue], any Error> {
        let store = self.store
        let owner = runner.owner
        let runID = run.id
        let leaseMillis = Millis(runner.leaseSeconds * 1000)
        do {
            return .success(try await withThrowingTaskGroup(of: [String: StepValue]?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .milliseconds(max(10, Int(leaseMillis / 3))))
                        let renewed = try await store.renewStepLease(pipelineRunID: runID, step: step.name, owner: owner, until: PipelineRunner.now() + leaseMillis)
                        if !renewed { throw LeaseLost() }
                    }
                }
                if let timeout {
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                        throw StepFailure("timed out after \(Self.seconds(timeout))", retryable: true)
                    }
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let outputs = result { return outputs }
                }
                throw CancellationError()
            })
        } catch {
            return .failure(error)
        }
    }

    func finishLeased(_ step: PipelineSpec.Step, state: StepRun.State, outputs: String?, key: String?, trackingRunID: String?, message: String?) async -> StepOutcome {
        let at = PipelineRunner.now()
        let recorded = (try? await Self.uncancelled {
            try await store.finishStep(
                pipelineRunID: run.id, step: step.name, owner: runner.owner, state: state, outputs: outputs, cacheKey: key,
                trackingRunID: trackingRunID, message: message, at: at)
        }) ?? false
        // Not recorded: the lease went to another runner, whose result counts.
        guard recorded else { return .busy }
        return .finished(StepRun(pipelineRunID: run.id, step: step.name, state: state, cacheKey: key, outputs: outputs, trackingRunID: trackingRunID, message: message, endTime: at))
    }

    func finishUnleased(_ step: PipelineSpec.Step, state: StepRun.State, message: String) async -> StepOutcome {
        let at = PipelineRunner.now()
        let recorded = (try? await Self.uncancelled {
            try await store.finishStep(
                pipelineRunID: run.id, step: step.name, owner: nil, state: state, outputs: nil, cacheKey: nil, trackingRunID: nil,
                message: message, at: at)
        }) ?? false
        guard recorded else { return .busy }
        return .finished(StepRun(pipelineRunID: run.id, step: step.name, state: state, message: message, startTime: at, endTime: at))
    }

    /// Store writes that must happen even when the step's task was cancelled.
    static func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await body() }.value
    }

    static func message(_ error: any Error) -> String {
        if let f = error as? StepFailure { return f.message }
        if let e = error as? LoomError { return e.message }
        return String(describing: error)
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : String(format: "%.2f s", s)
    }

    // MARK: Inputs and the cache key

    func resolveInputs(_ step: PipelineSpec.Step, upstream: [String: [String: StepValue]]) async throws -> [String: StepValue] {
        var inputs: [String: StepValue] = [:]
        for input in step.inputs {
            switch input.source {
            case .step(let name, let output):
                guard let value = upstream[name]?[output] else {
                    throw StepFailure("input '\(input.name)': step \(name) recorded no output '\(output)'")
                }
                inputs[input.name] = value
            case .parameter(let name):
                guard let value = parameters[name] else { throw StepFailure("input '\(input.name)': parameter '\(name)' has no value") }
                let type = input.type ?? step.kind.inputs?.first { $0.name == input.name }?.type ?? spec.parameter(name)?.type ?? value.type
                inputs[input.name] = try await resolve(value.text, type, input: input.name)
            case .literal(let text):
                let declared = input.type ?? step.kind.inputs?.first { $0.name == input.name }?.type
                inputs[input.name] = try await resolve(text, declared ?? .string, input: input.name)
            }
        }
        return inputs
    }

    func resolve(_ text: String, _ type: ValueType, input: String) async throws -> StepValue {
        switch type {
        case .string, .number, .integer, .boolean:
            return StepValue(type: type, value: text, digest: text)
        default:
            do {
                return try await runner.operations.resolve(text, as: type, workspace: run.workspace, directory: options.directory)
            } catch let failure as StepFailure {
                throw StepFailure("input '\(input)': \(failure.message)")
            } catch {
                throw StepFailure("input '\(input)': \(Self.message(error))")
            }
        }
    }

    func cacheKey(_ step: PipelineSpec.Step, inputs: [String: StepValue]) async throws -> String {
        var code: [String: String] = [:]
        for path in step.code {
            code[path] = try ContentDigest.file(path, under: options.directory, field: "code")
        }
        var digests = inputs.mapValues(\.digest)
        if step.kind == .ingest, case .string(let raw)? = Substitution.options(step.options, parameters: parameters)["path"] {
            // What an ingest reads is named by a path: its content belongs in the key.
            digests["path"] = try ContentDigest.tree(raw, under: options.directory)
        }
        return StepCacheKey(step: step, parameters: parameters, inputs: digests, code: code).digest
    }
}

/// Runs nudged since their executor last looked.
final class Nudges: Sendable {
    private let runs = Mutex<Set<String>>([])
    func set(_ runID: String) { _ = runs.withLock { $0.insert(runID) } }
    /// Whether `runID` was nudged (and forgets it).
    func take(_ runID: String) -> Bool { runs.withLock { $0.remove(runID) != nil } }
}

/// A flag that steps' tasks read and the scheduling loop sets.
final class Flag: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }
}

/// Content digests of files named in a spec.
public enum ContentDigest {
    /// The path, relative to `directory` when it is not absolute; a relative path may not leave it.
    public static func resolve(_ path: String, under directory: String?, field: String) throws -> String {
        if path.hasPrefix("/") { return path }
        let base = URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath).standardizedFileURL
        let full = base.appendingPathComponent(path).standardizedFileURL
        guard full.path == base.path || full.path.hasPrefix(base.path + "/") else {
            throw StepFailure("\(field): \(path) is outside the pipeline's folder")
        }
        return full.path
    }

    /// `sha256:` of a file's bytes.
    public static func file(_ path: String, under directory: String?, field: String) throws -> String {
        let full = try resolve(path, under: directory, field: field)
        guard let handle = FileHandle(forReadingAtPath: full) else { throw StepFailure("\(field): no file at \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return "sha256:" + Identifiers.hex(bytes: hasher.finalize())
    }

    /// `sha256:` over a file, or over a folder's files (relative path and digest of each, sorted).
    public static func tree(_ path: String, under directory: String?) throws -> String {
        let full = try resolve(path, under: directory, field: "with.path")
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isFolder) else { throw StepFailure("with.path: no file or folder at \(path)") }
        guard isFolder.boolValue else { return try file(full, under: nil, field: "with.path") }
        var lines: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: full)
        while let relative = enumerator?.nextObject() as? String {
            var sub: ObjCBool = false
            let p = (full as NSString).appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: p, isDirectory: &sub), !sub.boolValue {
                lines.append("\(relative) \(try file(p, under: nil, field: "with.path"))")
            }
        }
        lines.sort()
        return "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: Data(lines.joined(separator: "\n").utf8)))
    }
}

extension ParameterValue {
    /// A run's parameters as stored: a JSON object of strings, numbers and booleans.
    public static func encode(_ values: [String: ParameterValue]) -> String {
        let object = JSONValue.object(values.mapValues { v in
            switch v {
            case .string(let s): return .string(s)
            case .number(let d): return .number(d, raw: nil)
            case .integer(let i): return .number(Double(i), raw: String(i))
            case .boolean(let b): return .bool(b)
            }
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(object)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Reads stored parameters back with the types the spec gives them.
    public static func decode(_ text: String, spec: PipelineSpec) throws -> [String: ParameterValue] {
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            throw LoomError.internalError("stored parameters are not a JSON object")
        }
        var out: [String: ParameterValue] = [:]
        for (name, value) in object {
            let given: ParameterValue
            switch value {
            case .string(let s): given = .string(s)
            case .bool(let b): given = .boolean(b)
            case .number(let d, let raw):
                if let raw, let i = Int(raw) { given = .integer(i) } else if d == d.rounded(), abs(d) < 1e15, spec.parameter(name)?.type == .integer { given = .integer(Int(d)) } else { given = .number(d) }
            default: continue
            }
            if let p = spec.parameter(name) {
                out[name] = try PipelineSpec.convert(given, to: p.type, name: name)
            } else {
                out[name] = given
            }
        }
        return out
    }
}

extension PipelineRunner {
    /// The lineage edges of one step of a run: its dataset, model and file inputs into it (and an
    /// ingest step's file), it into each such output.
    public static func lineageEdges(
        run: PipelineRun, step: PipelineSpec.Step, inputs: [String: StepValue], outputs: [String: StepValue], parameters: [String: ParameterValue],
        directory: String?
    ) -> [LineageEdge] {
        let node = LineageNodes.step(run.id, step.name)
        let at = now()
        var edges: [LineageEdge] = []
        for (name, value) in inputs.sorted(by: { $0.key < $1.key }) {
            if let source = lineageNode(value) {
                edges.append(LineageEdge(workspace: run.workspace, source: source, target: node, relation: "input:\(name)", creationTime: at))
            }
        }
        if step.kind == .ingest, case .string(let path)? = Substitution.options(step.options, parameters: parameters)["path"],
            let full = try? ContentDigest.resolve(path, under: directory, field: "with.path") {
            edges.append(LineageEdge(workspace: run.workspace, source: LineageNodes.file(full), target: node, relation: "input:path", creationTime: at))
        }
        for (name, value) in outputs.sorted(by: { $0.key < $1.key }) {
            if let target = lineageNode(value) {
                edges.append(LineageEdge(workspace: run.workspace, source: node, target: target, relation: "output:\(name)", creationTime: at))
            }
        }
        return edges
    }

    /// The lineage node a value is (nil for plain values).
    public static func lineageNode(_ value: StepValue) -> String? {
        switch value.type {
        case .dataset:
            if value.value.hasPrefix("/") { return LineageNodes.file(value.value) }
            let parts = value.value.split(separator: "@", maxSplits: 1).map(String.init)
            guard parts.count == 2, let v = Int64(parts[1]) else { return LineageNodes.file(value.value) }
            return LineageNodes.dataset(parts[0], v)
        case .model, .file:
            if value.value.hasPrefix("models:/") {
                let rest = value.value.dropFirst("models:/".count).split(separator: "/", maxSplits: 1).map(String.init)
                if rest.count == 2 { return LineageNodes.model(rest[0], rest[1]) }
            }
            if value.value.hasPrefix("/") { return LineageNodes.file(value.value) }
            return LineageNodes.artifact(value.value)
        default:
            return nil
        }
    }
}
