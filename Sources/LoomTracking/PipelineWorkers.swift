import Foundation
import LoomArtifacts
import LoomCore
import LoomPipelines
import LoomStore

/// The server's side of workers (`loom worker`): handing out command steps that runs executed
/// with `workers` put up, renewing their leases, and committing what the workers report. A
/// worker that stops renewing loses the step once its lease expires; another worker takes it
/// over, and the first one's report is refused, so no step's outputs are committed twice.
public struct PipelineWorkers: Sendable {
    public let tracking: TrackingService
    public let leaseSeconds: Double

    public init(tracking: TrackingService, leaseSeconds: Double = 30) {
        self.tracking = tracking
        self.leaseSeconds = leaseSeconds
    }

    var store: any MetadataStore { tracking.store }
    var operations: TrackingStepOperations { TrackingStepOperations(tracking: tracking, trackingURI: nil) }

    /// A leased step: what to run and the tracking run of this attempt.
    public struct Assignment: Sendable, Codable {
        public var pipelineRunId: String
        public var step: String
        public var attempt: Int
        public var leaseSeconds: Double
        public var trackingRunId: String
        public var invocation: WorkerInvocation

        enum CodingKeys: String, CodingKey {
            case pipelineRunId = "pipeline_run_id", step, attempt, leaseSeconds = "lease_seconds", trackingRunId = "tracking_run_id", invocation
        }
    }

    static func owner(_ worker: String) -> String { "worker:" + worker }

    /// The oldest step waiting for a worker, leased to `worker`; nil when none waits.
    public func lease(worker: String) async throws -> Assignment? {
        try Validate.length(worker, path: "worker", limit: 200)
        let now = Clock.nowMillis()
        guard let step = try await store.leaseReadyStep(owner: Self.owner(worker), until: now + Millis(leaseSeconds * 1000), now: now) else { return nil }
        let invocation = try WorkerInvocation.decode(step.invocation)
        guard let run = try await store.pipelineRun(id: step.pipelineRunID) else { throw LoomError.notFound("No pipeline run \(step.pipelineRunID)") }
        let context = AuditContext(actor: run.createdBy, workspace: run.workspace, origin: "worker \(worker)")
        let trackingRunID = try await AuditContext.$current.withValue(context) {
            try await operations.startTrackingRun(
                experiment: run.pipeline, name: step.step, parentRunID: run.trackingRunID,
                tags: ["loom.pipeline": run.pipeline, "loom.pipeline.run": run.id, "loom.pipeline.step": step.step,
                       "loom.pipeline.attempt": String(step.attempts), "loom.pipeline.step.kind": "command", "loom.worker": worker])
        }
        return Assignment(
            pipelineRunId: step.pipelineRunID, step: step.step, attempt: step.attempts, leaseSeconds: leaseSeconds, trackingRunId: trackingRunID,
            invocation: invocation)
    }

    /// Extends `worker`'s lease; false when it no longer holds the step, or the run was
    /// cancelled (the step is then marked cancelled: the worker stops it).
    public func renew(worker: String, pipelineRunID: String, step: String) async throws -> Bool {
        if let run = try await store.pipelineRun(id: pipelineRunID), run.state == .cancelled {
            _ = try await store.finishStep(
                pipelineRunID: pipelineRunID, step: step, owner: Self.owner(worker), state: .cancelled, outputs: nil, cacheKey: nil,
                trackingRunID: nil, message: "the run was cancelled", at: Clock.nowMillis())
            return false
        }
        return try await store.renewStepLease(
            pipelineRunID: pipelineRunID, step: step, owner: Self.owner(worker), until: Clock.nowMillis() + Millis(leaseSeconds * 1000))
    }

    /// Commits a finished attempt: `outputs` as the worker reports them (for datasets, models and
    /// files: stored under the attempt's tracking run by the output's name; for values: their
    /// text). False when the worker no longer holds the step (nothing is committed).
    public func complete(worker: String, pipelineRunID: String, step name: String, trackingRunID: String, outputs reported: [String: String]) async throws -> Bool {
        guard let row = try await store.stepRuns(pipelineRunID: pipelineRunID).first(where: { $0.step == name }),
            row.state == .running, row.leaseOwner == Self.owner(worker) else { return false }
        guard let run = try await store.pipelineRun(id: pipelineRunID) else { throw LoomError.notFound("No pipeline run \(pipelineRunID)") }
        let invocation = try WorkerInvocation.decode(row.invocation)
        let (_, step, parameters) = try invocation.parsed()
        let context = AuditContext(actor: run.createdBy, workspace: run.workspace, origin: "worker \(worker)")
        return try await AuditContext.$current.withValue(context) { () async throws -> Bool in
            let stepInvocation = StepInvocation(
                pipeline: run.pipeline, pipelineRunID: run.id, workspace: run.workspace, step: step, options: [:], inputs: invocation.inputs,
                parameters: parameters, trackingRunID: trackingRunID, attempt: row.attempts, directory: nil)
            var outputs: [String: StepValue] = [:]
            let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-worker-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: staging) }
            do {
                for output in step.outputs {
                    switch output.type {
                    case .dataset:
                        let stored = try await operations.artifactRoot(trackingRunID).appending(output.name)
                        let local = try await tracking.download(stored, into: staging.path)
                        outputs[output.name] = try await operations.commitOutput(name: output.name, type: .dataset, path: local, invocation: stepInvocation)
                    case .model, .file:
                        // Stored by the worker: nothing local to upload.
                        outputs[output.name] = try await operations.commitOutput(
                            name: output.name, type: output.type, path: staging.appendingPathComponent("none").path, invocation: stepInvocation)
                    default:
                        guard let text = reported[output.name] else { throw StepFailure("output '\(output.name)': the worker reported no value") }
                        let file = staging.appendingPathComponent("value-\(output.name)")
                        try Data(text.utf8).write(to: file)
                        outputs[output.name] = try await operations.commitOutput(name: output.name, type: output.type, path: file.path, invocation: stepInvocation)
                    }
                }
            } catch let failure as StepFailure {
                _ = try await fail(worker: worker, pipelineRunID: pipelineRunID, step: name, trackingRunID: trackingRunID, message: failure.message, retryable: false)
                return true
            }
            let committed = try await store.finishStep(
                pipelineRunID: pipelineRunID, step: name, owner: Self.owner(worker), state: .succeeded, outputs: StepValue.encode(outputs),
                cacheKey: invocation.cacheKey, trackingRunID: trackingRunID, message: nil, at: Clock.nowMillis())
            await operations.endTrackingRun(id: trackingRunID, status: committed ? "FINISHED" : "FAILED")
            if committed {
                try? await store.addLineageEdges(PipelineRunner.lineageEdges(
                    run: run, step: step, inputs: invocation.inputs, outputs: outputs, parameters: parameters, directory: nil))
            }
            return committed
        }
    }

    /// Records a failed attempt: back to the workers after the step's retry delay (doubled per
    /// attempt) while it has retries left and the failure is `retryable`, else `failed`. False
    /// when the worker no longer holds the step.
    public func fail(worker: String, pipelineRunID: String, step name: String, trackingRunID: String?, message: String, retryable: Bool) async throws -> Bool {
        guard let row = try await store.stepRuns(pipelineRunID: pipelineRunID).first(where: { $0.step == name }),
            row.state == .running, row.leaseOwner == Self.owner(worker) else { return false }
        if let trackingRunID { await operations.endTrackingRun(id: trackingRunID, status: "FAILED") }
        let (_, step, _) = try WorkerInvocation.decode(row.invocation).parsed()
        if retryable && row.attempts <= step.retries {
            let delay = step.retryDelay * pow(2, Double(row.attempts - 1))
            return try await store.requeueStep(
                pipelineRunID: pipelineRunID, step: name, owner: Self.owner(worker), notBefore: Clock.nowMillis() + Millis(delay * 1000), message: message)
        }
        let tried = row.attempts > 1 ? " (after \(row.attempts) attempts)" : ""
        return try await store.finishStep(
            pipelineRunID: pipelineRunID, step: name, owner: Self.owner(worker), state: .failed, outputs: nil, cacheKey: nil,
            trackingRunID: trackingRunID, message: message + tried, at: Clock.nowMillis())
    }
}
