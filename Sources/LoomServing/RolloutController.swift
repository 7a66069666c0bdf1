import Foundation
import LoomCore
import NIOCore
import LoomStore
import Logging
import Synchronization

/// Drives rollouts to their end (docs/deployment.md, "Rollouts"): applies each stage's traffic,
/// judges the gates every gate interval, rolls back to the previous traffic map when one fails,
/// moves on when a stage has baked, and carries out a person's promote, pause, resume or abort.
/// Every replica runs one; a rollout is driven by the replica holding its lease, so another
/// takes over when that one stops, and a restarted server resumes where it was.
public final class RolloutController: Sendable {
    let serving: ServingService
    public let owner: String
    let leaseSeconds: Double
    let logger: Logger

    /// What this replica measures from, per rollout: snapshots of both deployments' stats at the
    /// start of the stage's window and of the rollout, and when gates were last judged.
    struct Window: Sendable {
        var stage: Int
        var candidate: (stats: DeploymentStats, at: DeploymentStats.Snapshot)
        var baseline: (stats: DeploymentStats, at: DeploymentStats.Snapshot)
        /// The baseline from the rollout's first window on: the reference once it has no traffic.
        var baselineSinceStart: DeploymentStats.Snapshot
        var lastJudged: Millis
        /// When gates are next due, and when the stage has baked.
        var interval: Millis
        var bakedAt: Millis
    }

    let windows = Mutex<[String: Window]>([:])
    /// The baseline's stats when this replica first drove each rollout: the reference for gates
    /// once the baseline has no live traffic.
    let starts = Mutex<[String: (stats: DeploymentStats, at: DeploymentStats.Snapshot)]>([:])

    public init(serving: ServingService, owner: String = "replica-" + String(Identifiers.newHexID().prefix(10)), leaseSeconds: Double = 10, logger: Logger) {
        self.serving = serving
        self.owner = owner
        self.leaseSeconds = leaseSeconds
        self.logger = logger
    }

    var store: any MetadataStore { serving.store }

    // MARK: Starting

    /// The stages of a spec: canary steps as live weights; blue-green an optional mirror, then
    /// the switch.
    public enum Stage: Sendable, Equatable {
        /// The validation dataset through the new deployment, before any traffic.
        case validate
        /// A flow rollout's evaluation of the new deployment's flow, before any traffic.
        case evaluate
        case traffic(Int)
        case mirror(Int)
    }

    public static func stages(_ spec: RolloutSpec) -> [Stage] {
        let first: [Stage] = (spec.validation == nil ? [] : [.validate]) + (spec.evaluation == nil ? [] : [.evaluate])
        switch spec.strategy {
        case .canary: return first + spec.steps.map(Stage.traffic)
        case .blueGreen: return first + (spec.mirrorPercent > 0 ? [.mirror(spec.mirrorPercent)] : []) + [.traffic(100)]
        }
    }

    static let metrics = ["error_rate", "latency_p50", "latency_p99", "latency_mean"]

    /// Checks a spec whole; every mistake is an `invalidParameter` naming it.
    public static func check(_ spec: RolloutSpec) throws(LoomError) {
        if spec.strategy == .canary {
            guard !spec.steps.isEmpty, spec.steps.last == 100 else { throw LoomError.invalidParameter("canary steps must end at 100 (e.g. 5,25,50,100)") }
            for (i, w) in spec.steps.enumerated() {
                guard (1...100).contains(w) else { throw LoomError.invalidParameter("canary step \(w) is not a percentage from 1 to 100") }
                if i > 0, w <= spec.steps[i - 1] { throw LoomError.invalidParameter("canary steps must grow: \(spec.steps[i - 1]) then \(w)") }
            }
        }
        if spec.strategy == .canary, spec.mirrorPercent != 0 {
            throw LoomError.invalidParameter("mirror is for blue-green rollouts; a canary moves live traffic in steps")
        }
        guard (0...TrafficPolicy.maxMirrorPercent).contains(spec.mirrorPercent) else {
            throw LoomError.invalidParameter("mirror must be from 0 to \(TrafficPolicy.maxMirrorPercent) percent")
        }
        guard spec.bakeSeconds.isFinite, (0...86_400).contains(spec.bakeSeconds) else { throw LoomError.invalidParameter("bake must be from 0 s to 24 h") }
        guard spec.gateIntervalSeconds.isFinite, spec.gateIntervalSeconds >= 0.1, spec.gateIntervalSeconds <= 3600 else {
            throw LoomError.invalidParameter("the gate interval must be from 0.1 s to 1 h")
        }
        guard (1...1_000_000).contains(spec.minRequests) else { throw LoomError.invalidParameter("min_requests must be from 1 to 1000000") }
        if let e = spec.evaluation {
            guard spec.flow != nil else { throw LoomError.invalidParameter("evaluation: an evaluation gates a flow rollout: give the flow to roll out") }
            guard !e.spec.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw LoomError.invalidParameter("evaluation.spec: the evaluation spec's YAML is required") }
            guard !e.dataset.isEmpty else { throw LoomError.invalidParameter("evaluation.dataset names a registered dataset (NAME or NAME@VERSION)") }
        }
        if let v = spec.validation {
            guard !v.dataset.isEmpty else { throw LoomError.invalidParameter("validation.dataset names a registered dataset (NAME or NAME@VERSION)") }
            guard (1...100_000).contains(v.maxRows) else { throw LoomError.invalidParameter("validation.max_rows must be from 1 to 100000") }
            for (metric, bound) in v.thresholds {
                guard ["accuracy", "mae", "rmse", "error_rate"].contains(metric) else {
                    throw LoomError.invalidParameter("validation.thresholds: unknown metric \(metric) (accuracy, mae, rmse, error_rate)")
                }
                guard bound.min != nil || bound.max != nil else { throw LoomError.invalidParameter("validation.thresholds.\(metric) has no min or max") }
                if metric != "error_rate", v.target == nil { throw LoomError.invalidParameter("validation.thresholds.\(metric) needs validation.target") }
            }
        }
        for (i, g) in spec.gates.enumerated() {
            guard metrics.contains(g.metric) || (g.metric.hasPrefix("run:") && g.metric.count > 4) else {
                throw LoomError.invalidParameter("gates[\(i)]: unknown metric \(g.metric) (error_rate, latency_p50, latency_p99, latency_mean or run:METRIC)")
            }
            let bounds = [g.max, g.min, g.maxRatio, g.maxIncrease, g.minDelta].compactMap { $0 }
            guard !bounds.isEmpty else { throw LoomError.invalidParameter("gates[\(i)] (\(g.metric)) has no threshold (max, min, max_ratio, max_increase, min_delta)") }
            guard bounds.allSatisfy(\.isFinite) else { throw LoomError.invalidParameter("gates[\(i)] (\(g.metric)) has a threshold that is not a number") }
        }
    }

    /// Starts a rollout on `endpoint`: from the deployment that has all live traffic to
    /// `spec.deployment` (made now, like the current one, when it does not exist).
    public func start(endpoint name: String, spec given: RolloutSpec, workspace: String) async throws -> Rollout {
        var spec = given
        try Self.check(spec)
        try ServingService.checkName(spec.deployment, what: "deployment")
        let e = try await serving.endpoint(name: name, workspace: workspace)
        if let active = try await store.rollouts(endpoint: name, workspace: workspace, limit: 1).first, active.state.isActive {
            throw LoomError.invalidState("Endpoint \(name) has a rollout in progress (\(active.id)): promote, abort or wait for it")
        }
        let live = e.traffic.filter { $0.value > 0 }
        guard live.count == 1, let (baseline, _) = live.first else {
            throw LoomError.invalidState(
                "A rollout starts from one deployment with all live traffic; endpoint \(name) has \(live.isEmpty ? "none" : TrafficPolicy.describe(live))")
        }
        guard spec.deployment != baseline else { throw LoomError.invalidParameter("The new deployment must not be the current one (\(baseline))") }
        let deployments = try await store.deployments(endpoint: name, workspace: workspace)
        if let flow = spec.flow {
            // A flow rollout: the new deployment serves the flow's version, like the current flow deployment otherwise.
            guard let current = deployments.first(where: { $0.name == baseline }), current.runtime == .flow else {
                throw LoomError.invalidParameter("flow: a flow rolls out from a flow deployment; \(baseline) is not one")
            }
            let pinned = try await serving.flowInvoker().pin(flow: flow, workspace: workspace)
            spec.flow = pinned
            var settings = current.settings
            settings.flow = pinned
            if let existing = deployments.first(where: { $0.name == spec.deployment }) {
                if (e.traffic[existing.name] ?? 0) > 0 { throw LoomError.invalidState("Deployment \(existing.name) has live traffic already") }
                guard existing.runtime == .flow else { throw LoomError.invalidParameter("deployment \(existing.name) is not a flow deployment") }
                if existing.settings.flow != pinned {
                    _ = try await serving.updateDeployment(endpoint: name, name: existing.name, model: nil, settings: settings, workspace: workspace)
                }
            } else {
                _ = try await serving.deploy(endpoint: name, name: spec.deployment, model: "", runtime: .flow, settings: settings, workspace: workspace)
            }
        } else if let existing = deployments.first(where: { $0.name == spec.deployment }) {
            if (e.traffic[existing.name] ?? 0) > 0 { throw LoomError.invalidState("Deployment \(existing.name) has live traffic already") }
            if !spec.model.isEmpty, spec.model != existing.model {
                _ = try await serving.updateDeployment(endpoint: name, name: existing.name, model: spec.model, settings: nil, workspace: workspace)
            }
            if spec.model.isEmpty { spec.model = existing.model }
        } else {
            guard !spec.model.isEmpty else { throw LoomError.invalidParameter("Name the model to roll out (models:/NAME@ALIAS)") }
            guard let current = deployments.first(where: { $0.name == baseline }) else { throw LoomError.notFound("No deployment named \(baseline)") }
            _ = try await serving.deploy(
                endpoint: name, name: spec.deployment, model: spec.model, runtime: current.runtime, settings: current.settings, workspace: workspace)
        }
        let now = Clock.nowMillis()
        let actor = AuditContext.current.actor
        let rollout = Rollout(
            id: Identifiers.newHexID(), workspace: workspace, endpoint: name, spec: spec, baseline: baseline, previousTraffic: e.traffic,
            previousMirror: e.mirror, createdBy: actor, creationTime: now)
        let stages = Self.stages(spec).map(Self.describe).joined(separator: " → ")
        try await store.createRollout(rollout, decision: RolloutDecision(
            rolloutID: rollout.id, time: now, kind: "start", outcome: "started",
            summary: "\(spec.strategy.rawValue) from \(baseline) to \(spec.deployment) (\(spec.flow.map { "flow " + $0 } ?? spec.model)): \(stages), bake \(Self.seconds(spec.bakeSeconds)) each, gates every \(Self.seconds(spec.gateIntervalSeconds))",
            detail: Self.json(spec.gates.map(Self.gateDescription)), actor: actor))
        await drive(rollout.id)
        return try await store.rollout(id: rollout.id) ?? rollout
    }

    /// Asks for a person's action on the endpoint's active rollout, and carries it out now when
    /// this replica can (otherwise the replica driving it does within a second).
    public func request(_ action: String, endpoint name: String, workspace: String) async throws -> Rollout {
        guard ["promote", "pause", "resume", "abort"].contains(action) else { throw LoomError.invalidParameter("unknown rollout action \(action)") }
        guard let r = try await store.rollouts(endpoint: name, workspace: workspace, limit: 1).first, r.state.isActive else {
            _ = try await serving.endpoint(name: name, workspace: workspace)
            throw LoomError.invalidState("Endpoint \(name) has no rollout in progress")
        }
        guard try await store.requestRolloutAction(id: r.id, action: action, actor: AuditContext.current.actor) else {
            throw LoomError.invalidState("Rollout \(r.id) has ended")
        }
        await drive(r.id)
        return try await store.rollout(id: r.id) ?? r
    }

    // MARK: Driving

    /// How long the server may wait before looking again: until the next gate judgement or the
    /// end of a bake this replica measures, at most `longest` (new rollouts and people's
    /// actions are seen within it), at least 20 ms.
    public func nextLook(longest: Duration = .seconds(1)) -> Duration {
        let now = Clock.nowMillis()
        let longestMillis = Millis(longest.components.seconds * 1000 + longest.components.attoseconds / 1_000_000_000_000_000)
        let due = windows.withLock { w in w.values.map { min($0.lastJudged + $0.interval, $0.bakedAt) }.min() }
        let wait = due.map { max(20, min(longestMillis, $0 - now)) } ?? longestMillis
        return .milliseconds(wait)
    }

    /// Drives every active rollout this replica can lease (the server calls it every second).
    public func tick() async {
        guard let active = try? await store.activeRollouts() else { return }
        for r in active { await drive(r.id) }
        let ids = Set(active.map(\.id))
        windows.withLock { w in w = w.filter { ids.contains($0.key) } }
        starts.withLock { s in s = s.filter { ids.contains($0.key) } }
    }

    /// One look at one rollout, under its lease.
    /// Runs a long stage's work (an evaluation, a validation) while renewing this replica's lease
    /// on the rollout, so that no other replica takes the rollout over and does the work again.
    func holdingLease<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        let (store, owner, seconds) = (self.store, self.owner, leaseSeconds)
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(seconds / 3))
                if Task.isCancelled { return }
                let now = Clock.nowMillis()
                _ = try? await store.leaseRollout(id: id, owner: owner, until: now + Millis(seconds * 1000), now: now)
            }
        }
        defer { renewal.cancel() }
        return try await body()
    }

    public func drive(_ id: String) async {
        let now = Clock.nowMillis()
        do {
            guard try await store.leaseRollout(id: id, owner: owner, until: now + Millis(leaseSeconds * 1000), now: now),
                let r = try await store.rollout(id: id), r.state.isActive
            else { return }
            let context = AuditContext(actor: "rollout \(r.id)", workspace: r.workspace, origin: "rollout controller")
            try await AuditContext.$current.withValue(context) { try await step(r, now: now) }
        } catch {
            logger.warning("a rollout step failed; trying again", metadata: ["rollout": "\(id)", "error": "\(error)"])
        }
    }

    func step(_ r: Rollout, now: Millis) async throws {
        if let action = r.requestedAction { return try await carryOut(action, r, now: now) }
        let stages = Self.stages(r.spec)
        guard r.stage < stages.count else { return try await finish(r, now: now, how: "all stages passed") }
        let stage = stages[r.stage]
        guard let live = serving.router.endpoint(workspace: r.workspace, name: r.endpoint) else {
            // Not loaded here yet, or deleted: a deleted endpoint's rollout ends.
            if try await store.endpoint(name: r.endpoint, workspace: r.workspace) == nil {
                try await end(r, .aborted, kind: "abort", now: now, summary: "the endpoint was deleted", restore: false)
            }
            return
        }
        guard let candidate = live.deployments[r.spec.deployment], let baseline = live.deployments[r.baseline] else {
            return try await end(r, .rolledBack, kind: "rollback", now: now, summary: "a deployment of the rollout is gone", restore: true)
        }

        starts.withLock { s in
            if s[r.id]?.stats !== baseline.stats { s[r.id] = (baseline.stats, baseline.stats.snapshot) }
        }

        // A stage not applied yet: the new deployment must be ready first.
        guard let started = r.stageStarted else {
            guard r.state == .running else { return }
            guard candidate.runtime.isReady else {
                if r.message != "waiting for \(candidate.name) to be ready" {
                    var next = r
                    next.message = "waiting for \(candidate.name) to be ready"
                    _ = try await save(next, now: now, kind: "wait", outcome: "waiting", summary: "waiting for \(candidate.name) to be ready")
                }
                return
            }
            if stage == .evaluate {
                guard let evaluation = r.spec.evaluation, let flow = candidate.deployment.settings.flow else {
                    return try await end(r, .rolledBack, kind: "rollback", now: now, summary: "the new deployment serves no flow to evaluate", restore: true)
                }
                let outcome: (passed: Bool, summary: String, detail: String)
                do {
                    let invoker = try serving.flowInvoker()
                    outcome = try await holdingLease(r.id) { try await invoker.evaluate(flow: flow, evaluation: evaluation, workspace: r.workspace) }
                } catch {
                    let why = (error as? LoomError)?.message ?? "\(error)"
                    return try await end(r, .rolledBack, kind: "rollback", now: Clock.nowMillis(), summary: "evaluation could not run: \(why)", restore: true)
                }
                guard outcome.passed else {
                    return try await end(
                        r, .rolledBack, kind: "rollback", now: Clock.nowMillis(), summary: "evaluation failed: \(outcome.summary)", detail: outcome.detail, restore: true)
                }
                var next = r
                next.stage += 1
                next.message = nil
                _ = try await save(next, now: Clock.nowMillis(), kind: "evaluate", outcome: "passed", summary: "evaluation passed: \(outcome.summary)", detail: outcome.detail)
                return
            }
            if stage == .validate {
                let timeout = Duration.milliseconds(live.endpoint.timeoutMillis)
                let (passed, summary, detail) = try await holdingLease(r.id) { try await self.validate(r, candidate, timeout: timeout) }
                guard passed else {
                    return try await end(r, .rolledBack, kind: "rollback", now: now, summary: "validation failed: \(summary)", detail: detail, restore: true)
                }
                var next = r
                next.stage += 1
                next.message = nil
                _ = try await save(next, now: now, kind: "validate", outcome: "passed", summary: "validation passed: \(summary)", detail: detail)
                return
            }
            try await apply(stage, r)
            var next = r
            next.stageStarted = now
            next.message = nil
            if try await save(next, now: now, kind: Self.kind(stage, r.spec), outcome: "applied", summary: Self.summary(stage, r)) {
                openWindow(r.id, stage: r.stage, candidate, baseline, now: now, spec: r.spec)
            }
            return
        }

        // This replica has no window for the stage (it restarted, or took the rollout over):
        // its measurements start now, and so does the stage's bake.
        guard var window = currentWindow(r.id, stage: r.stage, candidate, baseline) else {
            var next = r
            next.stageStarted = now
            if try await save(
                next, now: now, kind: "resume", outcome: "window-restarted",
                summary: "measuring again from now (this server started or took the rollout over); \(Self.describe(stage)) bakes another \(Self.seconds(r.spec.bakeSeconds))")
            {
                openWindow(r.id, stage: r.stage, candidate, baseline, now: now, spec: r.spec)
            }
            return
        }
        let baked = now - started >= Millis(r.spec.bakeSeconds * 1000)
        let due = now - window.lastJudged >= Millis(r.spec.gateIntervalSeconds * 1000)
        guard due || (baked && r.state == .running) else { return }
        window.lastJudged = now
        windows.withLock { $0[r.id] = window }

        let c = candidate.stats.snapshot.since(window.candidate.at)
        var b = baseline.stats.snapshot.since(window.baseline.at)
        var reference = "its requests in the same window"
        if b.requests < r.spec.minRequests {
            // The current deployment has (almost) no live traffic now: judge against what it
            // served since the rollout started.
            b = baseline.stats.snapshot.since(window.baselineSinceStart)
            reference = "its requests since the rollout started"
        }
        let results = try await judge(r, candidate: c, baseline: b)
        let detail = Self.json(["candidate_requests": c.requests, "baseline_requests": b.requests, "baseline_reference": reference, "gates": results.map(\.json)] as [String: any Sendable])
        if let failed = results.first(where: { $0.passed == false }) {
            return try await end(
                r, .rolledBack, kind: "rollback", now: now,
                summary: "gate failed at \(Self.describe(stage)): \(failed.sentence); traffic restored to \(TrafficPolicy.describe(r.previousTraffic))",
                detail: detail, restore: true)
        }
        guard baked, r.state == .running else { return }
        if let unsure = results.first(where: { $0.passed == nil }) {
            var next = r
            next.state = .paused
            next.message = "inconclusive: \(unsure.sentence)"
            _ = try await save(
                next, now: now, kind: "inconclusive", outcome: "paused",
                summary: "\(Self.describe(stage)) baked without enough data to judge (\(unsure.sentence)): paused for a person to promote, resume or abort",
                detail: detail)
            return
        }
        var next = r
        next.stage += 1
        next.stageStarted = nil
        let passed = "gates passed at \(Self.describe(stage)) after \(Self.seconds(Double(now - started) / 1000)) (\(c.requests) requests to \(candidate.name))"
        if next.stage >= stages.count {
            return try await end(r, .succeeded, kind: "promote", now: now, summary: passed + ": \(r.spec.deployment) has all live traffic", detail: detail, restore: false)
        }
        _ = try await save(next, now: now, kind: "gate", outcome: "passed", summary: passed + "; next: \(Self.describe(stages[next.stage]))", detail: detail)
    }

    func carryOut(_ action: String, _ r: Rollout, now: Millis) async throws {
        let who = r.requestedBy ?? "someone"
        switch action {
        case "promote":
            try await serving.applyTraffic(
                endpoint: r.endpoint, workspace: r.workspace,
                traffic: Dictionary(uniqueKeysWithValues: r.previousTraffic.keys.map { ($0, 0) }).merging([r.spec.deployment: 100]) { _, new in new },
                mirror: r.previousMirror.filter { $0.key != r.spec.deployment })
            try await end(r, .succeeded, kind: "promote", now: now, summary: "promoted by \(who): \(r.spec.deployment) has all live traffic", restore: false, handled: action)
        case "abort":
            try await end(r, .aborted, kind: "abort", now: now, summary: "aborted by \(who); traffic restored to \(TrafficPolicy.describe(r.previousTraffic))", restore: true, handled: action)
        case "pause":
            var next = r
            next.state = .paused
            next.message = "paused by \(who)"
            _ = try await save(next, now: now, kind: "pause", outcome: "paused", summary: "paused by \(who) (gates are still judged)", handled: action)
        default:
            var next = r
            next.state = .running
            next.message = nil
            _ = try await save(next, now: now, kind: "resume", outcome: "running", summary: "resumed by \(who)", handled: action)
        }
    }

    /// Ends the rollout; with `restore`, puts the traffic map back as it was.
    func end(
        _ r: Rollout, _ state: Rollout.State, kind: String, now: Millis, summary: String, detail: String? = nil, restore: Bool, handled: String? = nil
    ) async throws {
        var summary = summary
        // The rollout ends even when the map cannot be put back (a deployment in it was deleted
        // meanwhile): the log says so, and the traffic stays as it is.
        do {
            if restore {
                try await serving.applyTraffic(endpoint: r.endpoint, workspace: r.workspace, traffic: r.previousTraffic, mirror: r.previousMirror)
            } else if kind == "promote", handled == nil {
                // Succeeded: the old mirror settings apply again, without the new deployment.
                try await serving.applyTraffic(
                    endpoint: r.endpoint, workspace: r.workspace, traffic: nil, mirror: r.previousMirror.filter { $0.key != r.spec.deployment })
            }
        } catch let e as LoomError where e.code == .invalidParameter || e.code == .notFound {
            summary += "; the traffic map could not be changed (\(e.message)) and stays as it is"
        }
        var next = r
        next.state = state
        next.endTime = now
        next.message = summary
        _ = try await save(next, now: now, kind: kind, outcome: state.rawValue, summary: summary, detail: detail, handled: handled)
        windows.withLock { _ = $0.removeValue(forKey: r.id) }
        starts.withLock { _ = $0.removeValue(forKey: r.id) }
        logger.notice("rollout ended", metadata: ["rollout": "\(r.id)", "endpoint": "\(r.endpoint)", "state": "\(state.rawValue)", "why": "\(summary)"])
    }

    func finish(_ r: Rollout, now: Millis, how: String) async throws {
        try await end(r, .succeeded, kind: "promote", now: now, summary: how, restore: false)
    }

    /// Saves progress with its decision; false when this replica lost the lease meanwhile.
    @discardableResult
    func save(
        _ r: Rollout, now: Millis, kind: String, outcome: String, summary: String, detail: String? = nil, handled: String? = nil
    ) async throws -> Bool {
        var next = r
        next.lastUpdatedTime = max(now, r.lastUpdatedTime + 1)
        return try await store.advanceRollout(
            next, owner: owner, handled: handled,
            decision: RolloutDecision(
                rolloutID: r.id, time: now, kind: kind, outcome: outcome, summary: summary, detail: detail,
                actor: handled != nil ? (r.requestedBy ?? "someone") : "rollout controller"))
    }

    func apply(_ stage: Stage, _ r: Rollout) async throws {
        switch stage {
        case .validate, .evaluate:
            return
        case .traffic(let w):
            var traffic = r.previousTraffic.mapValues { _ in 0 }
            traffic[r.baseline] = 100 - w
            traffic[r.spec.deployment] = w
            try await serving.applyTraffic(
                endpoint: r.endpoint, workspace: r.workspace, traffic: traffic, mirror: r.previousMirror.filter { $0.key != r.spec.deployment })
        case .mirror(let p):
            try await serving.applyTraffic(endpoint: r.endpoint, workspace: r.workspace, traffic: nil, mirror: [r.spec.deployment: p])
        }
    }

    // MARK: Validation

    /// Sends the validation rows to the new deployment directly (100 per request), checks every
    /// answer and scores them against the truth; returns the verdict, a sentence and the detail.
    func validate(_ r: Rollout, _ candidate: LiveDeployment, timeout: Duration) async throws -> (Bool, String, String) {
        guard let v = r.spec.validation else { return (true, "nothing to validate", "{}") }
        let (columns, rows, truth) = try await serving.models.validationRows(dataset: v.dataset, target: v.target, limit: v.maxRows, workspace: r.workspace)
        guard !rows.isEmpty else { return (false, "\(v.dataset) has no rows", "{}") }
        var predictions: [JSONValue?] = []
        predictions.reserveCapacity(rows.count)
        let encoder = JSONEncoder()
        for start in stride(from: 0, to: rows.count, by: 100) {
            let chunk = Array(rows[start..<min(start + 100, rows.count)])
            let body = JSONValue.object(["dataframe_split": .object(["columns": .array(columns.map(JSONValue.string)), "data": .array(chunk.map(JSONValue.array))])])
            var got: [JSONValue]?
            if let answer = try? await candidate.runtime.invoke(
                ServingRequest(body: ByteBuffer(bytes: try encoder.encode(body)), contentType: "application/json", correlationID: "validation-\(r.id)-\(start)"),
                timeout: timeout), (200..<300).contains(answer.status) {
                got = answer.body.withUnsafeReadableBytes { raw in
                    switch try? JSONValue.parse(raw) {
                    case .object(let o)?: if case .array(let a)? = o["predictions"] { return a } else { return nil }
                    case .array(let a)?: return a
                    default: return nil
                    }
                }
            }
            if let got, got.count == chunk.count { predictions += got.map { $0 } } else { predictions += Array(repeating: nil, count: chunk.count) }
        }
        func text(_ p: JSONValue) -> String {
            switch p {
            case .string(let s): return s
            case .number(let d, let raw): return raw ?? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d))
            case .bool(let b): return b ? "true" : "false"
            default: return String(decoding: (try? encoder.encode(p)) ?? Data(), as: UTF8.self)
            }
        }
        let answered = predictions.enumerated().compactMap { i, p in p.map { (i, $0) } }
        var values: [String: Double] = ["error_rate": Double(rows.count - answered.count) / Double(rows.count)]
        var problems: [String] = []
        if let allowed = v.allowed {
            let outside = answered.filter { !allowed.contains(text($0.1)) }
            if !outside.isEmpty { problems.append("\(outside.count) prediction\(outside.count == 1 ? "" : "s") outside \(allowed) (row \(outside[0].0): \(text(outside[0].1)))") }
        }
        if let range = v.range {
            let outside = answered.filter { _, p in
                guard case .number(let d, _) = p else { return true }
                return (range.min.map { d < $0 } ?? false) || (range.max.map { d > $0 } ?? false)
            }
            if !outside.isEmpty { problems.append("\(outside.count) prediction\(outside.count == 1 ? "" : "s") outside the range") }
        }
        if let truth, !answered.isEmpty {
            values["accuracy"] = Double(answered.filter { text($0.1) == truth[$0.0] }.count) / Double(answered.count)
            let pairs = answered.compactMap { i, p -> (Double, Double)? in
                guard case .number(let d, _) = p, let t = Double(truth[i]) else { return nil }
                return (d, t)
            }
            if pairs.count == answered.count {
                values["mae"] = pairs.reduce(0) { $0 + abs($1.0 - $1.1) } / Double(pairs.count)
                values["rmse"] = (pairs.reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(pairs.count)).squareRoot()
            }
        }
        var thresholds = v.thresholds
        if thresholds["error_rate"] == nil { thresholds["error_rate"] = RolloutValidation.Bound(max: 0) }
        var checks: [[String: any Sendable]] = []
        for (metric, bound) in thresholds.sorted(by: { $0.key < $1.key }) {
            var check: [String: any Sendable] = ["metric": metric]
            if let min = bound.min { check["min"] = min }
            if let max = bound.max { check["max"] = max }
            guard let value = values[metric] else {
                problems.append("\(metric) cannot be computed (\(metric == "accuracy" ? "no answers" : "predictions or truth are not numbers"))")
                check["outcome"] = "failed"
                checks.append(check)
                continue
            }
            check["value"] = value
            var ok = true
            if let min = bound.min, value < min { problems.append("\(metric) \(Self.fmt(value)) below \(Self.fmt(min))"); ok = false }
            if let max = bound.max, value > max { problems.append("\(metric) \(Self.fmt(value)) above \(Self.fmt(max))"); ok = false }
            check["outcome"] = ok ? "passed" : "failed"
            checks.append(check)
        }
        let shown = values.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.fmt($0.value))" }.joined(separator: ", ")
        let detail = Self.json(["dataset": v.dataset, "rows": rows.count, "answered": answered.count, "checks": checks] as [String: any Sendable])
        if problems.isEmpty { return (true, "\(rows.count) rows of \(v.dataset): \(shown)", detail) }
        return (false, "\(rows.count) rows of \(v.dataset): " + problems.joined(separator: "; "), detail)
    }

    // MARK: Windows

    func openWindow(_ id: String, stage: Int, _ candidate: LiveDeployment, _ baseline: LiveDeployment, now: Millis, spec: RolloutSpec) {
        let interval = Millis(spec.gateIntervalSeconds * 1000)
        let bakedAt = now + Millis(spec.bakeSeconds * 1000)
        let first = starts.withLock { s in s[id].flatMap { $0.stats === baseline.stats ? $0.at : nil } }
        windows.withLock { w in
            let start = first ?? baseline.stats.snapshot
            w[id] = Window(
                stage: stage, candidate: (candidate.stats, candidate.stats.snapshot), baseline: (baseline.stats, baseline.stats.snapshot),
                baselineSinceStart: start, lastJudged: now, interval: interval, bakedAt: bakedAt)
        }
    }

    /// The window of this stage, if this replica opened it and both deployments are the same
    /// objects still (a replaced runtime starts counting again).
    func currentWindow(_ id: String, stage: Int, _ candidate: LiveDeployment, _ baseline: LiveDeployment) -> Window? {
        windows.withLock { w in
            guard let window = w[id], window.stage == stage, window.candidate.stats === candidate.stats, window.baseline.stats === baseline.stats else { return nil }
            return window
        }
    }

    // MARK: Gates

    public struct GateResult: Sendable {
        public var gate: RolloutGate
        public var candidate: Double?
        public var baseline: Double?
        /// nil: not enough data to judge.
        public var passed: Bool?
        public var sentence: String

        var json: [String: any Sendable] {
            var o: [String: any Sendable] = ["metric": gate.metric, "thresholds": RolloutController.gateDescription(gate)]
            if let candidate { o["candidate"] = candidate }
            if let baseline { o["baseline"] = baseline }
            o["outcome"] = passed.map { $0 ? "passed" : "failed" } ?? "inconclusive"
            return o
        }
    }

    /// Each gate's values and verdict for a window.
    func judge(_ r: Rollout, candidate c: DeploymentStats.Snapshot, baseline b: DeploymentStats.Snapshot) async throws -> [GateResult] {
        var out: [GateResult] = []
        for g in r.spec.gates {
            var cv: Double?
            var bv: Double?
            if g.metric.hasPrefix("run:") {
                let metric = String(g.metric.dropFirst(4))
                let deployments = try await store.deployments(endpoint: r.endpoint, workspace: r.workspace)
                if let v = deployments.first(where: { $0.name == r.spec.deployment })?.modelVersion {
                    cv = try await serving.models.runMetric(modelVersion: v, metric: metric, workspace: r.workspace)
                }
                if let v = deployments.first(where: { $0.name == r.baseline })?.modelVersion {
                    bv = try await serving.models.runMetric(modelVersion: v, metric: metric, workspace: r.workspace)
                }
            } else {
                func value(_ s: DeploymentStats.Snapshot) -> Double? {
                    guard s.requests >= r.spec.minRequests else { return nil }
                    switch g.metric {
                    case "error_rate": return s.errorRate
                    case "latency_p50": return s.percentileMillis(0.5)
                    case "latency_p99": return s.percentileMillis(0.99)
                    default: return s.meanMillis
                    }
                }
                cv = value(c)
                bv = value(b)
            }
            out.append(Self.verdict(g, candidate: cv, baseline: bv, requests: (c.requests, b.requests), minRequests: r.spec.minRequests))
        }
        return out
    }

    static func verdict(_ g: RolloutGate, candidate: Double?, baseline: Double?, requests: (Int, Int), minRequests: Int) -> GateResult {
        let relative = g.maxRatio != nil || g.maxIncrease != nil || g.minDelta != nil
        guard let c = candidate else {
            let why = g.metric.hasPrefix("run:") ? "the new model's run has no \(g.metric.dropFirst(4))" : "\(requests.0) requests to the new deployment, \(minRequests) needed"
            return GateResult(gate: g, candidate: nil, baseline: baseline, passed: nil, sentence: "\(g.metric): \(why)")
        }
        if relative && baseline == nil {
            let why = g.metric.hasPrefix("run:") ? "the current model's run has no \(g.metric.dropFirst(4))" : "\(requests.1) requests to the current deployment, \(minRequests) needed"
            return GateResult(gate: g, candidate: c, baseline: nil, passed: nil, sentence: "\(g.metric): \(why)")
        }
        var failures: [String] = []
        if let max = g.max, c > max { failures.append("above the maximum \(fmt(max))") }
        if let min = g.min, c < min { failures.append("below the minimum \(fmt(min))") }
        if let b = baseline {
            if let ratio = g.maxRatio, c > b * ratio { failures.append("more than \(fmt(ratio))× the current \(fmt(b))") }
            if let inc = g.maxIncrease, c > b + inc { failures.append("more than \(fmt(inc)) above the current \(fmt(b))") }
            if let delta = g.minDelta, c < b + delta { failures.append("less than the current \(fmt(b)) \(delta >= 0 ? "+" : "−") \(fmt(abs(delta)))") }
        }
        let shown = "\(g.metric) \(fmt(c))" + (baseline.map { " (current \(fmt($0)))" } ?? "")
        return failures.isEmpty
            ? GateResult(gate: g, candidate: c, baseline: baseline, passed: true, sentence: "\(shown) within \(gateDescription(g))")
            : GateResult(gate: g, candidate: c, baseline: baseline, passed: false, sentence: "\(shown) is " + failures.joined(separator: " and "))
    }

    // MARK: Words

    static func fmt(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e12 { return String(Int64(v)) }
        return String(format: abs(v) < 0.01 ? "%.5f" : "%.3f", v)
    }

    public static func seconds(_ s: Double) -> String {
        s >= 120 && s.truncatingRemainder(dividingBy: 60) == 0 ? "\(Int(s / 60)) min" : "\(fmt(s)) s"
    }

    static func gateDescription(_ g: RolloutGate) -> String {
        var parts: [String] = []
        if let v = g.max { parts.append("≤ \(fmt(v))") }
        if let v = g.min { parts.append("≥ \(fmt(v))") }
        if let v = g.maxRatio { parts.append("≤ \(fmt(v))× current") }
        if let v = g.maxIncrease { parts.append("≤ current + \(fmt(v))") }
        if let v = g.minDelta { parts.append("≥ current \(v >= 0 ? "+" : "−") \(fmt(abs(v)))") }
        return parts.joined(separator: ", ")
    }

    public static func describe(_ stage: Stage) -> String {
        switch stage {
        case .validate: return "validation"
        case .evaluate: return "evaluation"
        case .traffic(let w): return "\(w)% live"
        case .mirror(let p): return "\(p)% mirrored"
        }
    }

    static func kind(_ stage: Stage, _ spec: RolloutSpec) -> String {
        switch stage {
        case .validate: return "validate"
        case .evaluate: return "evaluate"
        case .traffic: return spec.strategy == .blueGreen ? "switch" : "step"
        case .mirror: return "mirror"
        }
    }

    static func summary(_ stage: Stage, _ r: Rollout) -> String {
        switch stage {
        case .validate: return "validating \(r.spec.deployment) on \(r.spec.validation?.dataset ?? "?")"
        case .evaluate: return "evaluating \(r.spec.deployment) (\(r.spec.flow ?? "?")) on \(r.spec.evaluation?.dataset ?? "?")"
        case .traffic(let w): return "\(r.spec.deployment) gets \(w)% of live traffic, \(r.baseline) \(100 - w)%"
        case .mirror(let p): return "\(r.spec.deployment) gets a copy of \(p)% of live requests (answers not returned)"
        }
    }

    static func json(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
