import Foundation
import LoomCore
import LoomSpec
import LoomStore
import Logging
import Synchronization

/// Fires applied pipelines' schedules and triggers (docs/pipelines.md, "Schedules and
/// triggers"). `tick` looks at every applied pipeline: a cron schedule that came due since the
/// last tick, or a dataset trigger whose dataset has a version it has not fired for, records a
/// firing (once per occasion across replicas: the store keeps one row per trigger and
/// occasion) and submits a run with the trigger's parameters. Webhooks and alerts fire when
/// called. The caller starts the runs returned.
public final class PipelineScheduler: Sendable {
    public let runner: PipelineRunner
    private let lastTick: Mutex<Date?>

    public init(runner: PipelineRunner) {
        self.runner = runner
        lastTick = Mutex(nil)
    }

    var store: any MetadataStore { runner.store }

    /// Fires what came due since the last tick (the first tick looks back a minute).
    public func tick(now: Date = Date()) async -> [PipelineRun] {
        let since = lastTick.withLock { last in
            defer { last = now }
            return last ?? now.addingTimeInterval(-60)
        }
        var started: [PipelineRun] = []
        for applied in (try? await store.appliedPipelines(workspace: nil)) ?? [] {
            guard let (version, spec) = try? await load(applied) else { continue }
            for (i, schedule) in spec.schedules.enumerated() {
                // The latest time it came due in (since, now]; earlier missed ones are not made up.
                var due: Date?
                var at = max(since, Date(timeIntervalSince1970: Double(applied.appliedTime) / 1000))
                while let next = schedule.cron.next(after: at), next <= now {
                    due = next
                    at = next
                }
                guard let due else { continue }
                let occasion = ISO8601DateFormatter().string(from: due)
                if let run = await fire(applied, version, spec, trigger: "schedule", key: "schedule[\(i)] \(schedule.cron)", occasion: occasion, parameters: schedule.parameters) {
                    started.append(run)
                }
            }
            for (i, trigger) in spec.triggers.enumerated() {
                guard case .dataset(let name, let parameter) = trigger.event,
                    let newest = try? await store.datasetVersions(name: name, workspace: applied.workspace).first,
                    newest.creationTime > applied.appliedTime else { continue }
                var parameters = trigger.parameters
                if let parameter { parameters[parameter] = .string("\(newest.name)@\(newest.version)") }
                if let run = await fire(applied, version, spec, trigger: "dataset", key: "triggers[\(i)] dataset \(name)", occasion: "\(newest.name)@\(newest.version)", parameters: parameters) {
                    started.append(run)
                }
            }
        }
        return started
    }

    /// Fires the webhook trigger `hook` of an applied pipeline, with `parameters` over the
    /// trigger's own. Not found when the pipeline is not applied or has no such webhook.
    public func webhook(pipeline: String, hook: String, parameters: [String: ParameterValue], workspace: String) async throws -> PipelineRun {
        guard let applied = try await store.appliedPipelines(workspace: workspace).first(where: { $0.name == pipeline }) else {
            throw LoomError.notFound("No applied pipeline named \(pipeline) (apply it with loom apply -f)")
        }
        let (version, spec) = try await load(applied)
        guard let (i, trigger) = spec.triggers.enumerated().first(where: { if case .webhook(hook) = $0.element.event { return true } else { return false } }) else {
            throw LoomError.notFound("Pipeline \(pipeline) has no webhook trigger '\(hook)'")
        }
        let merged = trigger.parameters.merging(parameters) { _, given in given }
        _ = try spec.resolveParameters(merged)  // a bad parameter is refused before anything is recorded
        // Each call is its own occasion.
        let id = Identifiers.newHexID()
        _ = try await store.recordTriggerFiring(
            workspace: applied.workspace, pipeline: applied.name, trigger: "triggers[\(i)] webhook \(hook)", occasion: id, pipelineRunID: id, at: Clock.nowMillis())
        return try await runner.submit(
            spec: spec, text: version.spec, parameters: merged, options: PipelineRunOptions(directory: applied.directory), trigger: "webhook",
            workspace: applied.workspace, id: id)
    }

    /// Fires every applied pipeline with an alert trigger on `monitor` (the monitoring issue calls
    /// this); `occasion` names the alert so that it fires each pipeline once.
    public func alert(monitor: String, occasion: String, parameters: [String: ParameterValue] = [:]) async -> [PipelineRun] {
        var started: [PipelineRun] = []
        for applied in (try? await store.appliedPipelines(workspace: nil)) ?? [] {
            guard let (version, spec) = try? await load(applied) else { continue }
            for (i, trigger) in spec.triggers.enumerated() {
                guard case .alert(monitor) = trigger.event else { continue }
                let merged = trigger.parameters.merging(parameters) { _, given in given }
                if let run = await fire(applied, version, spec, trigger: "alert", key: "triggers[\(i)] alert \(monitor)", occasion: occasion, parameters: merged) {
                    started.append(run)
                }
            }
        }
        return started
    }

    /// Runs the applied pipeline `pipeline` for a monitor's action, once per `occasion` (the
    /// alert): the run, or nil when it had run for this occasion. Not found when the pipeline
    /// is not applied; a bad parameter is refused before anything is recorded.
    public func action(
        pipeline: String, workspace: String, occasion: String, parameters: [String: ParameterValue]
    ) async throws -> PipelineRun? {
        guard let applied = try await store.appliedPipelines(workspace: workspace).first(where: { $0.name == pipeline }) else {
            throw LoomError.notFound("No applied pipeline named \(pipeline) (apply it with loom apply -f)")
        }
        let (version, spec) = try await load(applied)
        _ = try spec.resolveParameters(parameters)
        return await fire(applied, version, spec, trigger: "monitor", key: "monitor action", occasion: occasion, parameters: parameters)
    }

    func load(_ applied: AppliedPipeline) async throws -> (PipelineVersion, PipelineSpec) {
        guard let version = try await store.pipelineVersion(name: applied.name, version: applied.version, workspace: applied.workspace) else {
            throw LoomError.notFound("Pipeline \(applied.name) has no version \(applied.version)")
        }
        return (version, try PipelineSpec.parse(yaml: version.spec, file: "\(applied.name) version \(applied.version)"))
    }

    /// Records the firing, then submits the run; nil when it had fired for this occasion (or the
    /// run could not be submitted: logged).
    func fire(
        _ applied: AppliedPipeline, _ version: PipelineVersion, _ spec: PipelineSpec, trigger: String, key: String, occasion: String,
        parameters: [String: ParameterValue]
    ) async -> PipelineRun? {
        let id = Identifiers.newHexID()
        do {
            guard try await store.recordTriggerFiring(
                workspace: applied.workspace, pipeline: applied.name, trigger: key, occasion: occasion, pipelineRunID: id, at: Clock.nowMillis())
            else { return nil }
            let context = AuditContext(actor: applied.appliedBy, workspace: applied.workspace, origin: "pipeline \(trigger)")
            return try await AuditContext.$current.withValue(context) {
                try await runner.submit(
                    spec: spec, text: version.spec, parameters: parameters, options: PipelineRunOptions(directory: applied.directory),
                    trigger: trigger, workspace: applied.workspace, id: id)
            }
        } catch {
            runner.logger.error("a pipeline trigger could not start a run", metadata: [
                "pipeline": "\(applied.name)", "trigger": "\(key)", "occasion": "\(occasion)", "error": "\(error)"])
            return nil
        }
    }
}
