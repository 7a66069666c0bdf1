import Foundation
import LoomArtifacts
import LoomCore
import LoomPipelines
import LoomStore
import LoomTesting
import LoomTracking
import Testing

/// The pipeline runner on a real store (SQLite and PostgreSQL), real artifacts and real
/// processes: wiring, the cache, retries, timeouts, failures, cancellation, resuming, and the
/// built-in steps from ingest to register.
@Suite struct PipelineRunnerTests {
    struct Harness {
        let store: TestStore
        let tracking: TrackingService
        let runner: PipelineRunner
        let folder: URL

        init(_ store: TestStore, _ tracking: TrackingService, owner: String = "test-runner", leaseSeconds: Double = 30) throws {
            self.store = store
            self.tracking = tracking
            runner = PipelineRunner(
                store: store.store, operations: TrackingStepOperations(tracking: tracking, trackingURI: nil), owner: owner,
                leaseSeconds: leaseSeconds, defaultConcurrency: 4, pollSeconds: 0.05, logger: TestStore.logger)
            folder = store.directory.appendingPathComponent("project")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }

        func with(owner: String, leaseSeconds: Double = 30) throws -> Harness { try Harness(store, tracking, owner: owner, leaseSeconds: leaseSeconds) }

        func submit(_ yaml: String, _ parameters: [String: ParameterValue] = [:], noCache: Bool = false) async throws -> PipelineRun {
            let spec = try PipelineSpec.parse(yaml: yaml)
            return try await runner.submit(spec: spec, text: yaml, parameters: parameters, options: PipelineRunOptions(noCache: noCache, directory: folder.path))
        }

        func run(_ yaml: String, _ parameters: [String: ParameterValue] = [:], noCache: Bool = false) async throws -> (PipelineRun, [String: StepRun]) {
            let submitted = try await submit(yaml, parameters, noCache: noCache)
            let finished = try await runner.execute(runID: submitted.id)
            return (finished, try await steps(finished.id))
        }

        func steps(_ runID: String) async throws -> [String: StepRun] {
            Dictionary(uniqueKeysWithValues: try await store.store.stepRuns(pipelineRunID: runID).map { ($0.step, $0) })
        }

        func log(_ step: StepRun?, _ name: String = "stdout.txt") async throws -> String {
            let id = try #require(step?.trackingRunID)
            let root = try #require(try tracking.runArtifactRoot(try await tracking.run(id: id).info))
            return String(decoding: try await tracking.artifacts.readAll(try root.appending("logs/\(name)"), limit: 1 << 20), as: UTF8.self)
        }

        func lines(_ file: String) -> [String] {
            ((try? String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    static func withHarness(_ backend: TestBackend, _ body: @escaping (Harness) async throws -> Void) async throws {
        try await withTestStore(backend) { store, tracking in try await body(try Harness(store, tracking)) }
    }

    static func alive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    // MARK: Command steps, wiring and the cache

    static let wired = """
        pipeline: wired
        parameters:
          greeting: {type: string, default: hello}
        steps:
          make:
            kind: command
            command: echo make >> marks.txt; printf '%s world' ${{ parameters.greeting }} > ${{ outputs.text }}; echo "run=$MLFLOW_RUN_ID"
            outputs: {text: file}
          count:
            kind: command
            command: echo count >> marks.txt; wc -c < ${{ inputs.text }} | tr -d ' ' > ${{ outputs.n }}
            inputs: {text: "${{ steps.make.outputs.text }}"}
            outputs: {n: integer}
          show:
            kind: command
            command: 'echo show >> marks.txt; echo "n=${{ inputs.n }} env=$LOOM_INPUT_N"'
            inputs: {n: "${{ steps.count.outputs.n }}"}
        """

    @Test(arguments: TestBackend.available)
    func commandStepsAreWiredTrackedAndCached(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let (run, steps) = try await h.run(Self.wired)
            #expect(run.state == .succeeded, "\(run.message ?? "")")
            #expect(steps.values.allSatisfy { $0.state == .succeeded && $0.attempts == 1 })
            let n = StepValue.decode(steps["count"]?.outputs)["n"]
            #expect(n == StepValue(type: .integer, value: "11", digest: "11"))
            #expect(try await h.log(steps["show"]) == "n=11 env=11\n")
            // The command ran in its own tracking run, nested under the pipeline run's.
            let makeRun = try #require(steps["make"]?.trackingRunID)
            #expect(try await h.log(steps["make"]) == "run=\(makeRun)\n")
            let tags = try await h.tracking.run(id: makeRun).tags
            #expect(tags.first { $0.key == "mlflow.parentRunId" }?.value == run.trackingRunID)
            #expect(tags.first { $0.key == "loom.pipeline.step" }?.value == "make")
            #expect(try await h.tracking.run(id: makeRun).info.status == .finished)
            #expect(h.lines("marks.txt") == ["make", "count", "show"])

            // Same definition, parameters and inputs: every step reuses the first run's outputs.
            let (again, cached) = try await h.run(Self.wired)
            #expect(again.state == .succeeded)
            #expect(cached.values.allSatisfy { $0.state == .cached })
            #expect(cached["count"]?.outputs == steps["count"]?.outputs)
            #expect(h.lines("marks.txt").count == 3)

            // A changed parameter reruns what uses it, and what its outputs feed only when they changed.
            let (changed, rerun) = try await h.run(Self.wired, ["greeting": .string("hi")])
            #expect(changed.state == .succeeded)
            #expect(rerun["make"]?.state == .succeeded && rerun["count"]?.state == .succeeded && rerun["show"]?.state == .succeeded)
            #expect(StepValue.decode(rerun["count"]?.outputs)["n"]?.value == "8")
            #expect(h.lines("marks.txt").count == 6)

            // --no-cache runs everything.
            let (_, fresh) = try await h.run(Self.wired, noCache: true)
            #expect(fresh.values.allSatisfy { $0.state == .succeeded })
            #expect(h.lines("marks.txt").count == 9)
        }
    }

    // MARK: Failures

    @Test(arguments: TestBackend.available)
    func failuresRetriesAndTimeouts(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let (run, steps) = try await h.run("""
                pipeline: failing
                steps:
                  flaky:
                    kind: command
                    command: 'if [ "$LOOM_ATTEMPT" -lt 3 ]; then echo "attempt $LOOM_ATTEMPT" >&2; exit 3; fi; echo fine'
                    retries: 3
                    retry_delay: 0.05s
                  broken:
                    kind: command
                    command: 'echo "something broke" >&2; exit 7'
                    retries: 1
                    retry_delay: 0.05s
                  after_broken:
                    kind: command
                    command: echo never >> never.txt
                    needs: [broken]
                  last:
                    kind: command
                    command: echo never >> never.txt
                    needs: [after_broken, flaky]
                  slow:
                    kind: command
                    command: echo $$ > slow.pid; exec sleep 60
                    timeout: 1s
                  independent:
                    kind: command
                    command: echo fine
                    needs: [flaky]
                """)
            #expect(run.state == .failed)
            #expect(steps["flaky"]?.state == .succeeded && steps["flaky"]?.attempts == 3)
            #expect(steps["independent"]?.state == .succeeded)
            let broken = try #require(steps["broken"])
            #expect(broken.state == .failed && broken.attempts == 2)
            #expect(broken.message == "the command exited with status 7 (its output is in the step run's logs/stderr.txt): something broke (after 2 attempts)")
            #expect(try await h.log(broken, "stderr.txt") == "something broke\n")
            #expect(try await h.tracking.run(id: try #require(broken.trackingRunID)).info.status == .failed)
            #expect(steps["after_broken"]?.state == .skipped && steps["after_broken"]?.message == "skipped: step broken failed")
            #expect(steps["last"]?.state == .skipped)
            #expect(!FileManager.default.fileExists(atPath: h.folder.appendingPathComponent("never.txt").path))
            #expect(steps["slow"]?.state == .failed && steps["slow"]?.message == "timed out after 1 s")
            if let pid = Int32(h.lines("slow.pid").first ?? "") {
                #expect(!Self.alive(pid), "the timed-out command was stopped")
            }
            #expect(run.message?.hasPrefix("step broken failed: the command exited with status 7") == true)
            #expect(run.message?.hasSuffix("(and 1 more failed step); 2 steps skipped") == true)
        }
    }

    @Test(arguments: TestBackend.available)
    func badInputIsRefusedBeforeAnythingRuns(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let yaml = """
                pipeline: strict
                parameters: {rows: {type: integer, default: 3}}
                steps:
                  a: {kind: command, command: "head -n ${{ parameters.rows }} /dev/null"}
                """
            await #expect(throws: LoomError.self) { _ = try await h.submit(yaml, ["nope": .integer(1)]) }
            await #expect(throws: LoomError.self) { _ = try await h.submit(yaml, ["rows": .string("many")]) }
            #expect(try await h.store.store.pipelineRuns(pipeline: "strict", workspace: Workspace.defaultName, limit: 10).isEmpty)
            // An input that names nothing fails its step at once, without retries.
            let (run, steps) = try await h.run("""
                pipeline: missing
                steps:
                  train: {kind: train, inputs: {data: no-such-dataset@4}, with: {target: y, model: gbdt}, retries: 3}
                """)
            #expect(run.state == .failed)
            #expect(steps["train"]?.attempts == 0)
            #expect(steps["train"]?.message == "input 'data': Dataset no-such-dataset has no version 4")
        }
    }

    // MARK: Cancelling and resuming

    @Test(arguments: TestBackend.available)
    func cancellingStopsRunningCommands(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let run = try await h.submit("""
                pipeline: long
                steps:
                  wait: {kind: command, command: "echo $$ > wait.pid; exec sleep 60"}
                  next: {kind: command, command: echo never >> never.txt, needs: [wait]}
                """)
            let runner = h.runner
            let execution = Task { try await runner.execute(runID: run.id) }
            while h.lines("wait.pid").isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await runner.cancel(runID: run.id, message: "stop"))
            let finished = try await execution.value
            #expect(finished.state == .cancelled && finished.message == "stop")
            let steps = try await h.steps(run.id)
            #expect(steps["wait"]?.state == .cancelled && steps["next"]?.state == .cancelled)
            #expect(!Self.alive(try #require(Int32(h.lines("wait.pid").first ?? ""))))
            #expect(try await runner.cancel(runID: run.id) == false, "a finished run is not cancelled again")
        }
    }

    @Test(arguments: TestBackend.available)
    func aStoppedRunnerLeavesTheRunToResume(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let yaml = """
                pipeline: resumable
                steps:
                  first: {kind: command, command: echo first >> marks.txt}
                  second:
                    kind: command
                    command: 'echo "second $LOOM_ATTEMPT" >> marks.txt; if [ "$LOOM_ATTEMPT" = 1 ]; then exec sleep 60; fi'
                    needs: [first]
                """
            let run = try await h.submit(yaml)
            let runner = h.runner
            let execution = Task { try await runner.execute(runID: run.id) }
            while h.lines("marks.txt").count < 2 { try await Task.sleep(for: .milliseconds(20)) }
            execution.cancel()  // the server stops
            let left = try await execution.value
            #expect(left.state == .running)
            var steps = try await h.steps(run.id)
            #expect(steps["first"]?.state == .succeeded)
            #expect(steps["second"]?.state == .pending && steps["second"]?.attempts == 1, "given back for the next runner")

            let resumed = try await h.with(owner: "second-runner").runner.execute(runID: run.id)
            #expect(resumed.state == .succeeded)
            steps = try await h.steps(run.id)
            #expect(steps["second"]?.attempts == 2)
            #expect(h.lines("marks.txt") == ["first", "second 1", "second 2"], "the finished step did not run again")
        }
    }

    @Test(arguments: TestBackend.available)
    func aDeadRunnersStepIsTakenOverWhenItsLeaseExpires(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let run = try await h.submit("""
                pipeline: takeover
                steps:
                  only: {kind: command, command: echo "attempt $LOOM_ATTEMPT" >> marks.txt}
                """)
            // A runner that died holding the step's lease, due to expire shortly.
            let now = Clock.nowMillis()
            #expect(try await h.store.store.leaseStep(pipelineRunID: run.id, step: "only", owner: "dead", until: now + 400, now: now) != nil)
            let finished = try await h.with(owner: "live").runner.execute(runID: run.id)
            #expect(finished.state == .succeeded)
            let steps = try await h.steps(run.id)
            #expect(steps["only"]?.attempts == 2 && steps["only"]?.state == .succeeded)
            #expect(h.lines("marks.txt") == ["attempt 2"])
        }
    }

    @Test(arguments: TestBackend.available)
    func twoRunnersOnOneRunRunEachStepOnce(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            var yaml = "pipeline: shared\nsteps:\n"
            for i in 0..<12 {
                yaml += "  s\(i): {kind: command, command: 'echo s\(i) >> marks.txt; sleep 0.05'\(i >= 4 ? ", needs: [s\(i - 4)]" : "")}\n"
            }
            let run = try await h.submit(yaml)
            let a = try h.with(owner: "runner-a").runner
            let b = try h.with(owner: "runner-b").runner
            async let first = a.execute(runID: run.id)
            async let second = b.execute(runID: run.id)
            let (x, y) = try await (first, second)
            #expect(x.state == .succeeded && y.state == .succeeded)
            #expect(h.lines("marks.txt").sorted() == (0..<12).map { "s\($0)" }.sorted(), "each step ran once")
            #expect(try await h.steps(run.id).values.allSatisfy { $0.attempts == 1 })
        }
    }

    // MARK: Schedules and triggers

    @Test(arguments: TestBackend.available)
    func schedulesAndTriggersFireOncePerOccasion(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            let yaml = """
                pipeline: retrain
                parameters:
                  data: {type: dataset, default: seed@1}
                  reason: {type: string, default: manual}
                steps:
                  noop: {kind: command, command: "true"}
                schedules:
                  - {cron: "0 3 * * *", parameters: {reason: nightly}}
                triggers:
                  - {dataset: customers, parameter: data, parameters: {reason: data}}
                  - {webhook: retrain}
                  - {alert: churn-drift, parameters: {reason: drift}}
                """
            let spec = try PipelineSpec.parse(yaml: yaml)
            let (version, _) = try await h.store.store.createPipelineVersion(PipelineVersion(name: "retrain", digest: "sha256:x", spec: yaml, createdBy: "ann", creationTime: 0))
            let appliedAt = try #require(ISO8601DateFormatter().date(from: "2026-11-25T12:00:00Z"))
            try await h.store.store.applyPipeline(AppliedPipeline(
                name: "retrain", version: version.version, directory: h.folder.path, appliedBy: "ann", appliedTime: Millis(appliedAt.timeIntervalSince1970 * 1000)))
            let scheduler = PipelineScheduler(runner: h.runner)
            let replica = PipelineScheduler(runner: try h.with(owner: "replica").runner)
            func date(_ s: String) throws -> Date { try #require(ISO8601DateFormatter().date(from: s)) }

            // Nothing due at 02:59:30; the 03:00 schedule fires once, on one replica only.
            #expect(await scheduler.tick(now: try date("2026-11-26T02:59:30Z")).isEmpty)
            let fired = await scheduler.tick(now: try date("2026-11-26T03:00:20Z"))
            #expect(fired.count == 1 && fired.first?.trigger == "schedule")
            #expect(try ParameterValue.decode(try #require(fired.first).parameters, spec: spec)["reason"] == .string("nightly"))
            #expect(await replica.tick(now: try date("2026-11-26T03:00:40Z")).isEmpty, "the other replica does not fire it again")
            #expect(await scheduler.tick(now: try date("2026-11-26T03:01:00Z")).isEmpty)

            // A new version of the dataset fires the dataset trigger with that version, once.
            try FileManager.default.createDirectory(at: h.folder.appendingPathComponent("d"), withIntermediateDirectories: true)
            try "a,b\n1,2\n".write(to: h.folder.appendingPathComponent("d/c.csv"), atomically: true, encoding: .utf8)
            _ = try await h.tracking.registerDataset(name: "customers", path: h.folder.appendingPathComponent("d/c.csv").path)
            let byData = await scheduler.tick(now: try date("2026-11-26T03:01:30Z"))
            #expect(byData.map(\.trigger) == ["dataset"])
            let dataParameters = try ParameterValue.decode(try #require(byData.first).parameters, spec: spec)
            #expect(dataParameters["data"] == .string("customers@1") && dataParameters["reason"] == .string("data"))
            #expect(await replica.tick(now: try date("2026-11-26T03:02:00Z")).isEmpty)

            // Webhooks fire on each call, with the caller's parameters over the trigger's.
            let hooked = try await scheduler.webhook(pipeline: "retrain", hook: "retrain", parameters: ["reason": .string("ci")], workspace: Workspace.defaultName)
            let hookParameters = try ParameterValue.decode(hooked.parameters, spec: spec)
            #expect(hooked.trigger == "webhook" && hookParameters["reason"] == .string("ci"))
            await #expect(throws: LoomError.self) {
                _ = try await scheduler.webhook(pipeline: "retrain", hook: "nope", parameters: [:], workspace: Workspace.defaultName)
            }
            let firings = try await h.store.store.auditEvents(AuditQuery(entityType: "pipeline", entityID: "retrain", maxResults: 1000)).items.count
            await #expect(throws: LoomError.self) {
                _ = try await scheduler.webhook(pipeline: "retrain", hook: "retrain", parameters: ["nope": .integer(1)], workspace: Workspace.defaultName)
            }
            // A refused call records no firing.
            #expect(try await h.store.store.auditEvents(AuditQuery(entityType: "pipeline", entityID: "retrain", maxResults: 1000)).items.count == firings)

            // An alert fires each pipeline that waits for it, once per alert.
            let alerted = await scheduler.alert(monitor: "churn-drift", occasion: "alert-17")
            #expect(alerted.map(\.trigger) == ["alert"])
            #expect(await replica.alert(monitor: "churn-drift", occasion: "alert-17").isEmpty)
            #expect(await scheduler.alert(monitor: "other-monitor", occasion: "alert-18").isEmpty)

            // The runs it started run like any other.
            let finished = try await h.runner.execute(runID: try #require(fired.first).id)
            #expect(finished.state == .succeeded)
            let all = try await h.store.store.pipelineRuns(pipeline: "retrain", workspace: Workspace.defaultName, limit: 10)
            #expect(all.count == 4)
            #expect(all.allSatisfy { $0.createdBy == "ann" || $0.trigger == "webhook" })
        }
    }

    // MARK: Built-in steps

    /// 240 rows where `label` follows `x` (with a little noise), and a text column.
    static func customers(_ folder: URL) throws {
        var rng = SystemRandomNumberGenerator()
        var csv = "id,x,z,color,label\n"
        for i in 0..<240 {
            let x = Double(i % 100) / 10
            let flip = Int.random(in: 0..<20, using: &rng) == 0
            csv += "\(i),\(x),\(Double(i % 7)),\(["red", "green", "blue"][i % 3]),\((x > 5) != flip ? "yes" : "no")\n"
        }
        try csv.write(to: folder.appendingPathComponent("data/customers.csv"), atomically: true, encoding: .utf8)
    }

    static func builtIn(minAUC: Double) -> String {
        """
        pipeline: builtin
        parameters: {min_auc: {type: number, default: \(minAUC)}}
        steps:
          ingest: {kind: ingest, with: {path: data/customers.csv, dataset: customers}}
          check:
            kind: validate
            inputs: {data: "${{ steps.ingest.outputs.data }}"}
            with:
              expectations:
                - {rule: not_null, column: id}
                - {rule: allowed_values, column: label, values: ["yes", "no"]}
          split:
            kind: split
            inputs: {data: "${{ steps.check.outputs.data }}"}
            with: {dataset: customers, shares: [0.6, 0.2, 0.2], seed: 3, stratify: label}
          train:
            kind: train
            inputs: {data: "${{ steps.split.outputs.train }}", validation: "${{ steps.split.outputs.validation }}"}
            with: {target: label, model: gbdt, features: [x, z, color], max_iterations: 20, seed: 1}
          evaluate:
            kind: evaluate
            inputs: {model: "${{ steps.train.outputs.model }}", data: "${{ steps.split.outputs.test }}"}
          gate:
            kind: gate
            inputs: {model: "${{ steps.train.outputs.model }}", metrics: "${{ steps.evaluate.outputs.metrics }}"}
            with:
              metrics: {roc_auc: {min: "${{ parameters.min_auc }}"}}
              compare: {alias: production, metric: validation_roc_auc}
          register:
            kind: register
            inputs: {model: "${{ steps.train.outputs.model }}"}
            needs: [gate]
            with: {name: churn, alias: challenger}
        """
    }

    @Test(arguments: TestBackend.available)
    func builtInStepsFromIngestToRegister(_ backend: TestBackend) async throws {
        try await Self.withHarness(backend) { h in
            try FileManager.default.createDirectory(at: h.folder.appendingPathComponent("data"), withIntermediateDirectories: true)
            try Self.customers(h.folder)
            let (run, steps) = try await h.run(Self.builtIn(minAUC: 0.6))
            #expect(run.state == .succeeded, "\(run.message ?? "")")
            let data = try #require(StepValue.decode(steps["ingest"]?.outputs)["data"])
            #expect(data.value == "customers@1" && data.digest.hasPrefix("sha256:"))
            #expect(StepValue.decode(steps["check"]?.outputs)["data"] == data, "validate passes the same version on")
            let parts = StepValue.decode(steps["split"]?.outputs)
            #expect(parts["train"]?.value == "customers-train@1" && parts["test"]?.value == "customers-test@1")
            let model = try #require(StepValue.decode(steps["train"]?.outputs)["model"])
            #expect(model.value == "runs:/\(steps["train"]?.trackingRunID ?? "")/model")
            let trained = try await h.tracking.run(id: try #require(steps["train"]?.trackingRunID))
            #expect(trained.metrics.contains { $0.key == "validation_roc_auc" })
            let evaluated = try await h.tracking.run(id: try #require(steps["evaluate"]?.trackingRunID))
            #expect((evaluated.metrics.first { $0.key == "roc_auc" }?.value ?? 0) >= 0.6)
            #expect(StepValue.decode(steps["register"]?.outputs)["model"]?.value == "models:/churn/1")
            let challenger = try await h.tracking.modelVersion(name: "churn", alias: "challenger")
            #expect(challenger.version == "1" && challenger.source == model.value && challenger.runID == steps["train"]?.trackingRunID)

            // Lineage, both ways: the model from the file through every step, the dataset (by a
            // digest prefix) to the model.
            let up = try await h.tracking.lineage(of: try await h.tracking.lineageNode("model:churn@challenger"), directions: [.upstream])
            let upstream = Set(up.nodes.map(\.id))
            for node in ["dataset:customers@1", "dataset:customers-train@1", "step:\(run.id)/train", "step:\(run.id)/split",
                         "artifact:\(model.value)", "file:\(h.folder.appendingPathComponent("data/customers.csv").standardizedFileURL.path)"] {
                #expect(upstream.contains(node), "\(node) upstream of the model")
            }
            #expect(up.edges.contains { $0.source == "artifact:\(model.value)" && $0.target == "model:churn/1" && $0.relation == "registered" })
            let digest = data.digest.dropFirst("sha256:".count).prefix(12)
            let down = try await h.tracking.lineage(of: try await h.tracking.lineageNode("dataset:customers@\(digest)"), directions: [.downstream])
            #expect(down.root == "dataset:customers@1")
            #expect(Set(down.nodes.map(\.id)).isSuperset(of: ["model:churn/1", "dataset:customers-test@1", "step:\(run.id)/evaluate"]))
            #expect(Set(down.nodes.map(\.id)).isDisjoint(with: ["file:\(h.folder.appendingPathComponent("data/customers.csv").standardizedFileURL.path)"]))
            await #expect(throws: LoomError.self) { _ = try await h.tracking.lineageNode("dataset:customers@ffffffffffff") }

            // A gate that falls short stops the registration and says by how much; nothing new is registered.
            let (strict, stopped) = try await h.run(Self.builtIn(minAUC: 1.01))
            #expect(strict.state == .failed)
            #expect(stopped["train"]?.state == .cached && stopped["evaluate"]?.state == .cached)
            let message = try #require(stopped["gate"]?.message)
            #expect(message.hasPrefix("gate failed: roc_auc is ") && message.contains("needs >= 1.01"), "\(message)")
            #expect(stopped["register"]?.state == .skipped && stopped["register"]?.message == "skipped: step gate failed")
            #expect(try await h.tracking.searchModelVersions(filter: "name = 'churn'", maxResults: nil, orderBy: [], pageToken: nil).items.count == 1)

            // Against a production model that scored better, the gate fails the comparison.
            let productionRun = try await h.tracking.createRun(experimentID: "0", userID: "test", startTime: nil, runName: "prod", tags: [])
            try await h.tracking.logMetric(runID: productionRun.info.runID, metric: Metric(key: "validation_roc_auc", value: 1.5, timestamp: 0, step: 0))
            let better = try await h.tracking.createModelVersion(
                name: "churn", source: "runs:/\(productionRun.info.runID)/model", runID: productionRun.info.runID, runLink: nil,
                description: nil, tags: [], modelID: nil, userID: "test")
            try await h.tracking.setAlias(name: "churn", alias: "production", version: better.version)
            let (_, compared) = try await h.run(Self.builtIn(minAUC: 0.6))
            let comparison = try #require(compared["gate"]?.message)
            #expect(compared["gate"]?.state == .failed)
            #expect(comparison.contains("for churn@production (version \(better.version))"), "\(comparison)")
        }
    }
}
