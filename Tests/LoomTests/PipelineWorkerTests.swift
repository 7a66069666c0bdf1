import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomArtifacts
import LoomCore
import LoomPipelines
import LoomServer
import LoomStore
import LoomTesting
import LoomTracking
import NIOCore
import Testing

/// The server's side of workers: a run with `workers` puts its command steps up for leasing;
/// workers (played here over the real HTTP routes and through the service) lease, renew,
/// complete or fail them; a dead worker's step goes to another, whose result alone counts.
@Suite struct PipelineWorkerTests {
    static let spec = """
        pipeline: remote
        steps:
          make: {kind: command, command: "echo made > ${{ outputs.out }}", outputs: {out: file}}
          count: {kind: command, command: "wc -c < ${{ inputs.f }} > ${{ outputs.n }}", inputs: {f: "${{ steps.make.outputs.out }}"}, outputs: {n: integer}, retries: 1, retry_delay: 0.01s}
        """

    static func runner(_ store: any MetadataStore, _ tracking: TrackingService) -> PipelineRunner {
        PipelineRunner(store: store, operations: TrackingStepOperations(tracking: tracking, trackingURI: nil), pollSeconds: 0.05, logger: TestStore.logger)
    }

    @Test(arguments: TestBackend.available)
    func aDeadWorkersStepGoesToAnotherAndIsCommittedOnce(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { store, tracking in
            let runner = Self.runner(store.store, tracking)
            let run = try await runner.submit(spec: try PipelineSpec.parse(yaml: Self.spec), text: Self.spec, parameters: [:], options: PipelineRunOptions(workers: true))
            let execution = Task { try await runner.execute(runID: run.id) }
            let workers = PipelineWorkers(tracking: tracking, leaseSeconds: 30)
            func lease(_ worker: String) async throws -> PipelineWorkers.Assignment {
                for _ in 0..<200 {
                    if let a = try await workers.lease(worker: worker) { return a }
                    try await Task.sleep(for: .milliseconds(20))
                }
                throw LoomError.unavailable("nothing to lease")
            }
            // Worker A takes `make` and dies without a word.
            let a = try await lease("a")
            #expect(a.step == "make" && a.attempt == 1 && a.invocation.step == "make")
            #expect(try await workers.lease(worker: "b") == nil, "nothing else is ready: count waits for make")
            // A's lease runs out (no renewals), so B gets it, stores the output and completes.
            #expect(try await store.store.renewStepLease(pipelineRunID: run.id, step: "make", owner: "worker:a", until: Clock.nowMillis() - 1))
            let b = try await lease("b")
            #expect(b.step == "make" && b.attempt == 2)
            #expect(try await workers.renew(worker: "b", pipelineRunID: run.id, step: "make"))
            #expect(try await !workers.renew(worker: "a", pipelineRunID: run.id, step: "make"))
            let root = try #require(try tracking.runArtifactRoot(try await tracking.run(id: b.trackingRunId).info))
            _ = try await tracking.artifacts.write(try root.appending("out"), bytes: Array("made\n".utf8))
            #expect(try await !workers.complete(worker: "a", pipelineRunID: run.id, step: "make", trackingRunID: a.trackingRunId, outputs: [:]), "A lost it")
            #expect(try await workers.complete(worker: "b", pipelineRunID: run.id, step: "make", trackingRunID: b.trackingRunId, outputs: [:]))
            #expect(try await !workers.complete(worker: "b", pipelineRunID: run.id, step: "make", trackingRunID: b.trackingRunId, outputs: [:]), "once")

            // `count` becomes ready with make's output as its input; a retryable failure comes back.
            let c1 = try await lease("c")
            #expect(c1.step == "count" && c1.invocation.inputs["f"]?.value == "runs:/\(b.trackingRunId)/out")
            #expect(try await workers.fail(worker: "c", pipelineRunID: run.id, step: "count", trackingRunID: c1.trackingRunId, message: "exit 1", retryable: true))
            let c2 = try await lease("c")
            #expect(c2.step == "count" && c2.attempt == 2)
            #expect(try await workers.complete(worker: "c", pipelineRunID: run.id, step: "count", trackingRunID: c2.trackingRunId, outputs: ["n": "5"]))

            let finished = try await execution.value
            #expect(finished.state == .succeeded, "\(finished.message ?? "")")
            let steps = Dictionary(uniqueKeysWithValues: try await store.store.stepRuns(pipelineRunID: run.id).map { ($0.step, $0) })
            #expect(steps["make"]?.attempts == 2 && steps["make"]?.trackingRunID == b.trackingRunId)
            #expect(StepValue.decode(steps["count"]?.outputs)["n"] == StepValue(type: .integer, value: "5", digest: "5"))
            #expect(try await tracking.run(id: a.trackingRunId).info.status == .running, "the dead worker's attempt is left as it was")
            let graph = try await tracking.lineage(of: "artifact:runs:/\(b.trackingRunId)/out", directions: [.downstream])
            #expect(graph.nodes.map(\.id).contains("step:\(run.id)/count"))

            // Re-running reuses both results: nothing is put up for workers.
            let again = try await runner.submit(spec: try PipelineSpec.parse(yaml: Self.spec), text: Self.spec, parameters: [:], options: PipelineRunOptions(workers: true))
            #expect(try await runner.execute(runID: again.id).state == .succeeded)
            #expect(try await store.store.stepRuns(pipelineRunID: again.id).allSatisfy { $0.state == .cached })
        }
    }

    @Test func workersSpeakHTTP() async throws {
        try await withTestApp { client, services, _ in
            let runner = Self.runner(services.store, services.tracking)
            let spec = "pipeline: http\nsteps:\n  only: {kind: command, command: \"true\", outputs: {v: string}}\n"
            let run = try await runner.submit(spec: try PipelineSpec.parse(yaml: spec), text: spec, parameters: [:], options: PipelineRunOptions(workers: true))
            let execution = Task { try await runner.execute(runID: run.id) }
            var (status, body) = (HTTPResponse.Status.noContent, [String: Any]())
            for _ in 0..<200 where status == .noContent {
                (status, body) = try await client.json(.post, "/api/v1/workers/lease", body: #"{"worker": "w1"}"#)
                if status == .noContent { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(status == .ok && body["step"] as? String == "only" && body["attempt"] as? Int == 1)
            let invocation = try #require(body["invocation"] as? [String: Any])
            #expect((invocation["spec"] as? String)?.contains("pipeline: http") == true && invocation["pipeline_run_id"] as? String == run.id)
            let trackingRun = try #require(body["tracking_run_id"] as? String)
            (status, body) = try await client.json(.post, "/api/v1/workers/renew", body: #"{"worker": "w1", "pipeline_run_id": "\#(run.id)", "step": "only"}"#)
            #expect(status == .ok && body["ok"] as? Bool == true)
            (status, body) = try await client.json(.post, "/api/v1/workers/lease", body: #"{"worker": "w2"}"#)
            #expect(status == .noContent)
            (status, body) = try await client.json(.post, "/api/v1/workers/complete", body: #"{"worker": "w2", "pipeline_run_id": "\#(run.id)", "step": "only", "tracking_run_id": "\#(trackingRun)", "outputs": {"v": "x"}}"#)
            #expect(status == .ok && body["ok"] as? Bool == false, "w2 holds nothing")
            (status, body) = try await client.json(.post, "/api/v1/workers/complete", body: #"{"worker": "w1", "pipeline_run_id": "\#(run.id)", "step": "only", "tracking_run_id": "\#(trackingRun)", "outputs": {"v": "hello"}}"#)
            #expect(status == .ok && body["ok"] as? Bool == true)
            (status, _) = try await client.json(.post, "/api/v1/workers/lease", body: #"{}"#)
            #expect(status == .badRequest)
            let finished = try await execution.value
            #expect(finished.state == .succeeded)
            let step = try #require(try await services.store.stepRuns(pipelineRunID: run.id).first)
            #expect(StepValue.decode(step.outputs)["v"]?.value == "hello" && step.trackingRunID == trackingRun)
        }
    }
}
