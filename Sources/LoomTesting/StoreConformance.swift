import Foundation
import LoomCore
import LoomStore
import LoomTracking
import Testing

/// The behaviour every ``MetadataStore`` backend must have. Each check takes a fresh, migrated
/// store (through ``TrackingService`` where the rules live there) and records expectations.
public enum StoreConformance {
    public static func experiments(_ t: TrackingService) async throws {
        let store = t.store
        let defaultExperiment = try await t.experiment(id: "0")
        #expect(defaultExperiment.name == "Default")
        let e = try await t.createExperiment(name: "exp-a", artifactLocation: nil, tags: [Tag(key: "team", value: "x")])
        #expect(e.artifactLocation == "mlflow-artifacts:/\(e.id)")
        #expect(Int(e.id)! > 0)
        await #expect(throws: LoomError.self) { _ = try await t.createExperiment(name: "exp-a", artifactLocation: nil, tags: []) }
        do {
            _ = try await t.createExperiment(name: "exp-a", artifactLocation: nil, tags: [])
        } catch let error as LoomError {
            #expect(error.code == .alreadyExists)
        }
        try await t.renameExperiment(id: e.id, newName: "exp-b")
        #expect(try await t.experiment(named: "exp-b").id == e.id)
        try await t.setExperimentTag(id: e.id, key: "k", value: "v")
        #expect(try await t.experiment(id: e.id).tags.contains(Tag(key: "k", value: "v")))
        try await t.deleteExperimentTag(id: e.id, key: "k")
        #expect(!(try await t.experiment(id: e.id).tags.contains { $0.key == "k" }))
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        try await t.deleteExperiment(id: e.id)
        #expect(try await store.runInfo(id: run.info.runID)?.lifecycleStage == .deleted)
        let active = try await t.searchExperiments(filter: nil, orderBy: [], viewType: .activeOnly, maxResults: 100, pageToken: nil)
        #expect(!active.items.contains { $0.id == e.id })
        try await t.restoreExperiment(id: e.id)
        #expect(try await store.runInfo(id: run.info.runID)?.lifecycleStage == .active)
        // Search: filters, order and pages.
        for i in 0..<5 { _ = try await t.createExperiment(name: "page-\(i)", artifactLocation: nil, tags: [Tag(key: "n", value: "\(i)")]) }
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await t.searchExperiments(filter: "name LIKE 'page-%'", orderBy: ["name DESC"], viewType: .all, maxResults: 2, pageToken: token)
            seen += page.items.map(\.name)
            token = page.nextPageToken
        } while token != nil
        #expect(seen == ["page-4", "page-3", "page-2", "page-1", "page-0"])
        let tagged = try await t.searchExperiments(filter: "tags.n = '3'", orderBy: [], viewType: .all, maxResults: 10, pageToken: nil)
        #expect(tagged.items.map(\.name) == ["page-3"])
    }

    public static func runsAndMetrics(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "runs", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "alice", startTime: 1000, runName: "r1", tags: [Tag(key: "t", value: "1")])
        let id = run.info.runID
        #expect(id.count == 32)
        #expect(run.info.artifactURI == "mlflow-artifacts:/\(e.id)/\(id)/artifacts")
        #expect(run.tags.contains(Tag(key: "mlflow.runName", value: "r1")))
        try await t.logBatch(runID: id, metrics: [
            Metric(key: "loss", value: 5.0, timestamp: 10, step: 10),
            Metric(key: "loss", value: 7.0, timestamp: 20, step: 2),
            Metric(key: "acc", value: .nan, timestamp: 1, step: 0),
        ], params: [Param(key: "lr", value: "0.1")], tags: [Tag(key: "t", value: "2")])
        let fetched = try await t.run(id: id)
        let loss = fetched.metrics.first { $0.key == "loss" }
        #expect(loss?.value == 5.0, "the latest value is the one with the greatest step")
        #expect(fetched.metrics.first { $0.key == "acc" }?.value.isNaN == true)
        #expect(fetched.params == [Param(key: "lr", value: "0.1")])
        #expect(fetched.tags.contains(Tag(key: "t", value: "2")))
        // Params are write-once; the same value again is fine.
        try await t.logParam(runID: id, key: "lr", value: "0.1")
        await #expect(throws: LoomError.self) { try await t.logParam(runID: id, key: "lr", value: "0.2") }
        #expect(try await t.run(id: id).params == [Param(key: "lr", value: "0.1")])
        // A failing batch writes nothing.
        await #expect(throws: LoomError.self) {
            try await t.logBatch(runID: id, metrics: [Metric(key: "new", value: 1, timestamp: 1)], params: [Param(key: "lr", value: "9")], tags: [])
        }
        #expect(try await t.run(id: id).metrics.contains { $0.key == "new" } == false)
        // History in step order; identical points are stored once.
        try await t.logMetric(runID: id, metric: Metric(key: "loss", value: 7.0, timestamp: 20, step: 2))
        let history = try await t.metricHistory(runID: id, key: "loss", maxResults: nil, pageToken: nil)
        #expect(history.items.map(\.step) == [2, 10])
        // The latest values of many keys at once (more rows than one upsert statement holds);
        // then a newer step for every other key.
        let keys = 0..<250
        let first: [Metric] = keys.map { i in Metric(key: "k\(i)", value: Double(i), timestamp: 1, step: 1) }
        let newer: [Metric] = keys.filter { $0 % 2 == 0 }.map { i in Metric(key: "k\(i)", value: Double(-i - 1), timestamp: 1, step: 2) }
        try await t.logBatch(runID: id, metrics: first, params: [], tags: [])
        try await t.logBatch(runID: id, metrics: newer, params: [], tags: [])
        var wide: [String: Double] = [:]
        for m in try await t.run(id: id).metrics { wide[m.key] = m.value }
        let expected: [Double] = keys.map { i in i % 2 == 0 ? Double(-i - 1) : Double(i) }
        #expect(keys.map { i in wide["k\(i)"] } == expected)
        // Lifecycle.
        let info = try await t.updateRun(id: id, status: .finished, endTime: 5000, runName: "renamed")
        #expect(info.status == .finished && info.endTime == 5000 && info.runName == "renamed")
        try await t.deleteRun(id: id)
        await #expect(throws: LoomError.self) { try await t.logMetric(runID: id, metric: Metric(key: "x", value: 1, timestamp: 1)) }
        try await t.restoreRun(id: id)
        try await t.setTag(runID: id, key: "after", value: "restore")
        try await t.deleteTag(runID: id, key: "after")
        await #expect(throws: LoomError.self) { try await t.deleteTag(runID: id, key: "after") }
        await #expect(throws: LoomError.self) { _ = try await t.run(id: "0123456789abcdef0123456789abcdef") }
    }

    public static func runSearch(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "search", artifactLocation: nil, tags: [])
        var ids: [String] = []
        for i in 0..<12 {
            let r = try await t.createRun(experimentID: e.id, userID: "u", startTime: Int64(1000 + i), runName: "run-\(i)", tags: [Tag(key: "group", value: i % 2 == 0 ? "even" : "odd")])
            try await t.logBatch(runID: r.info.runID, metrics: [Metric(key: "acc", value: Double(i) / 10, timestamp: 1)],
                                 params: [Param(key: "lr", value: i < 6 ? "0.01" : "0.1")], tags: [])
            ids.append(r.info.runID)
        }
        let nan = try await t.createRun(experimentID: e.id, userID: "u", startTime: 5000, runName: "nan", tags: [])
        try await t.logMetric(runID: nan.info.runID, metric: Metric(key: "acc", value: .nan, timestamp: 1))
        _ = try await t.createRun(experimentID: e.id, userID: "u", startTime: 6000, runName: "none", tags: [])

        func names(_ filter: String?, _ order: [String] = [], max: Int = 100) async throws -> [String] {
            try await t.searchRuns(experimentIDs: [e.id], filter: filter, viewType: .activeOnly, maxResults: max, orderBy: order, pageToken: nil).items.map(\.info.runName)
        }
        #expect(try await names("metrics.acc > 0.85 and params.lr = '0.1'", ["metrics.acc DESC"]) == ["run-11", "run-10", "run-9"])
        #expect(try await names("tags.group = 'even' and metrics.acc < 0.3", ["metrics.acc ASC"]) == ["run-0", "run-2"])
        #expect(try await names("tags.group LIKE 'ev%'").count == 6)
        #expect(try await names("tags.group LIKE 'EV%'").isEmpty, "LIKE is case-sensitive")
        #expect(try await names("tags.group ILIKE 'EV%'").count == 6)
        #expect(try await names("attributes.run_name = 'run-3'") == ["run-3"])
        #expect(try await names("metrics.acc != 0.5").contains("nan"), "NaN differs from every number")
        #expect(try await names("params.lr IS NULL").sorted() == ["nan", "none"])
        #expect(try await names("attributes.run_id IN ('\(ids[0])', '\(ids[1])')").sorted() == ["run-0", "run-1"])
        // NaN sorts after numbers and missing values last, in both directions.
        let asc = try await names(nil, ["metrics.acc ASC"])
        #expect(asc.first == "run-0" && Array(asc.suffix(2)) == ["nan", "none"])
        let desc = try await names(nil, ["metrics.acc DESC"])
        #expect(desc.first == "run-11" && Array(desc.suffix(2)) == ["nan", "none"])
        // Default order: newest first.
        #expect(try await names(nil).first == "none")
        // Paging covers every run exactly once.
        var all: [String] = []
        var token: String?
        repeat {
            let page = try await t.searchRuns(experimentIDs: [e.id], filter: nil, viewType: .activeOnly, maxResults: 5, orderBy: ["params.lr ASC", "metrics.acc DESC"], pageToken: token)
            all += page.items.map(\.info.runID)
            token = page.nextPageToken
        } while token != nil
        #expect(all.count == 14 && Set(all).count == 14)
        await #expect(throws: LoomError.self) { _ = try await names("metrics.acc > 'x'") }
        await #expect(throws: LoomError.self) { _ = try await names("params.lr = 1 OR params.lr = 2") }
    }

    public static func registry(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "reg", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let rid = run.info.runID
        _ = try await t.createRegisteredModel(name: "fraud", description: "d", tags: [Tag(key: "owner", value: "risk")])
        await #expect(throws: LoomError.self) { _ = try await t.createRegisteredModel(name: "fraud", description: nil, tags: []) }
        let v1 = try await t.createModelVersion(name: "fraud", source: "runs:/\(rid)/model", runID: rid, runLink: nil, description: nil, tags: [], modelID: nil, userID: nil)
        let v2 = try await t.createModelVersion(name: "fraud", source: "runs:/\(rid)/model", runID: rid, runLink: nil, description: nil, tags: [Tag(key: "k", value: "v")], modelID: nil, userID: nil)
        #expect(v1.version == "1" && v2.version == "2")
        try await t.setAlias(name: "fraud", alias: "champion", version: "1")
        #expect(try await t.modelVersion(name: "fraud", alias: "champion").version == "1")
        try await t.setAlias(name: "fraud", alias: "champion", version: "2")
        #expect(try await t.modelVersion(name: "fraud", alias: "champion").version == "2")
        #expect(try await t.modelVersion(name: "fraud", alias: "latest").version == "2")
        await #expect(throws: LoomError.self) { try await t.setAlias(name: "fraud", alias: "v1", version: "1") }
        _ = try await t.transitionStage(name: "fraud", version: "1", stage: "production", archiveExisting: false)
        _ = try await t.transitionStage(name: "fraud", version: "2", stage: "Production", archiveExisting: true)
        #expect(try await t.modelVersion(name: "fraud", version: "1").currentStage == .archived)
        let model = try await t.registeredModel(name: "fraud")
        #expect(model.aliases == [ModelAlias(alias: "champion", version: "2")])
        #expect(Set(model.latestVersions.map(\.version)) == ["1", "2"])
        try await t.deleteModelVersion(name: "fraud", version: "2")
        let v3 = try await t.createModelVersion(name: "fraud", source: "runs:/\(rid)/model", runID: rid, runLink: nil, description: nil, tags: [], modelID: nil, userID: nil)
        #expect(v3.version == "3", "version numbers are never reused")
        #expect(try await t.registeredModel(name: "fraud").aliases.isEmpty, "deleting a version drops its aliases")
        _ = try await t.renameRegisteredModel(name: "fraud", newName: "fraud-v2")
        #expect(try await t.modelVersion(name: "fraud-v2", version: "3").name == "fraud-v2")
        let found = try await t.searchModelVersions(filter: "name = 'fraud-v2'", maxResults: nil, orderBy: [], pageToken: nil)
        #expect(found.items.map(\.version).sorted() == ["1", "3"])
        try await t.deleteRegisteredModel(name: "fraud-v2")
        await #expect(throws: LoomError.self) { _ = try await t.registeredModel(name: "fraud-v2") }
        // Prompts are registered models with a marker tag, listed apart from models.
        _ = try await t.createRegisteredModel(name: "greeting", description: nil, tags: [Tag(key: "mlflow.prompt.is_prompt", value: "true")])
        _ = try await t.createRegisteredModel(name: "plain", description: nil, tags: [])
        let models = try await t.searchRegisteredModels(filter: "tags.`mlflow.prompt.is_prompt` != 'true'", maxResults: nil, orderBy: [], pageToken: nil)
        #expect(models.items.map(\.name) == ["plain"])
        let prompts = try await t.searchRegisteredModels(filter: "tags.`mlflow.prompt.is_prompt` = 'true'", maxResults: nil, orderBy: [], pageToken: nil)
        #expect(prompts.items.map(\.name) == ["greeting"])
    }

    public static func loggedModels(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "lm", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let m = try await t.createLoggedModel(experimentID: e.id, name: "clf", modelType: nil, sourceRunID: run.info.runID, params: [Param(key: "depth", value: "3")], tags: [])
        #expect(m.modelID.hasPrefix("m-") && m.status == .pending)
        #expect(m.artifactLocation == "mlflow-artifacts:/\(e.id)/models/\(m.modelID)/artifacts")
        try await t.logMetric(runID: run.info.runID, metric: Metric(key: "auc", value: 0.9, timestamp: 1, modelID: m.modelID))
        let ready = try await t.finalizeLoggedModel(id: m.modelID, status: .ready)
        #expect(ready.status == .ready)
        #expect(try await t.loggedModel(id: m.modelID).metrics.first?.value == 0.9)
        let found = try await t.searchLoggedModels(experimentIDs: [e.id], filter: "name = 'clf' and metrics.auc > 0.5", orderBy: [], maxResults: nil, pageToken: nil)
        #expect(found.items.map(\.modelID) == [m.modelID])
        try await t.logOutputs(runID: run.info.runID, models: [ModelIO(modelID: m.modelID, step: 0)])
        #expect(try await t.run(id: run.info.runID).modelOutputs.map(\.modelID) == [m.modelID])
        try await t.deleteLoggedModel(id: m.modelID)
        await #expect(throws: LoomError.self) { _ = try await t.loggedModel(id: m.modelID) }
    }

    public static func datasets(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "ds", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let input = DatasetInput(tags: [Tag(key: "mlflow.data.context", value: "training")],
                                 dataset: Dataset(name: "iris", digest: "abcd1234", sourceType: "local", source: "{}"))
        try await t.logInputs(runID: run.info.runID, datasets: [input, input], models: [])
        try await t.logInputs(runID: run.info.runID, datasets: [input], models: [])
        let fetched = try await t.run(id: run.info.runID)
        #expect(fetched.datasetInputs.count == 1)
        #expect(fetched.datasetInputs.first?.tags == input.tags)
        let hits = try await t.searchRuns(experimentIDs: [e.id], filter: "datasets.name = 'iris' and datasets.context = 'training'", viewType: .activeOnly, maxResults: 10, orderBy: [], pageToken: nil)
        #expect(hits.items.count == 1)
    }

    /// Pipeline versions, runs, and step leases: one owner at a time, a lost lease taken over
    /// after it expires, outputs committed only by the lease's holder.
    public static func pipelines(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        func spec(_ text: String) -> PipelineVersion {
            PipelineVersion(name: "churn", digest: "sha256:" + text.utf8.map { String($0, radix: 16) }.joined(), spec: text, createdBy: "alice", creationTime: 1000)
        }
        let (v1, created1) = try await store.createPipelineVersion(spec("steps: a"))
        #expect(created1 && v1.version == 1 && v1.spec == "steps: a")
        let (again, createdAgain) = try await store.createPipelineVersion(spec("steps: a"))
        #expect(!createdAgain && again == v1)
        let (v2, _) = try await store.createPipelineVersion(spec("steps: b"))
        #expect(v2.version == 2)
        #expect(try await store.pipelineVersions(name: "churn", workspace: ws).map(\.version) == [2, 1])
        #expect(try await store.pipelineVersion(name: "churn", version: 1, workspace: ws)?.spec == "steps: a")
        #expect(try await store.pipelineVersion(name: "churn", version: 1, workspace: "elsewhere") == nil)

        let run = PipelineRun(id: "pr1", pipeline: "churn", pipelineVersion: 2, parameters: #"{"seed":7}"#, createdBy: "alice", startTime: 2000)
        try await store.createPipelineRun(run, steps: ["train", "split"])
        #expect(try await store.pipelineRun(id: "pr1") == run)
        #expect(try await store.stepRuns(pipelineRunID: "pr1").map(\.step) == ["split", "train"])
        #expect(try await store.stepRuns(pipelineRunID: "pr1").allSatisfy { $0.state == .pending && $0.attempts == 0 })
        #expect(try await store.unfinishedPipelineRuns().map(\.id) == ["pr1"])
        #expect(try await store.setPipelineRunState(id: "pr1", state: .running, message: nil, trackingRunID: "t1", at: 2001))

        // One lease at a time: of owners racing for a step, exactly one gets it.
        let winners = try await withThrowingTaskGroup(of: String?.self) { group in
            for w in 0..<6 {
                group.addTask { try await store.leaseStep(pipelineRunID: "pr1", step: "split", owner: "w\(w)", until: 5000, now: 2100)?.leaseOwner }
            }
            return try await group.reduce(into: [String]()) { if let o = $1 { $0.append(o) } }
        }
        #expect(winners.count == 1)
        let owner = try #require(winners.first)
        var split = try #require(try await store.stepRuns(pipelineRunID: "pr1").first { $0.step == "split" })
        #expect(split.state == .running && split.attempts == 1 && split.leaseOwner == owner && split.startTime == 2100)
        // Held and unexpired: nobody else gets it; its holder renews.
        #expect(try await store.leaseStep(pipelineRunID: "pr1", step: "split", owner: "late", until: 9000, now: 4999) == nil)
        #expect(try await store.renewStepLease(pipelineRunID: "pr1", step: "split", owner: owner, until: 6000))
        #expect(try await !store.renewStepLease(pipelineRunID: "pr1", step: "split", owner: "late", until: 9000))
        // Expired: taken over, one more attempt; the old holder can neither renew nor commit.
        let taken = try #require(try await store.leaseStep(pipelineRunID: "pr1", step: "split", owner: "rescuer", until: 9000, now: 6001))
        #expect(taken.attempts == 2 && taken.leaseOwner == "rescuer")
        #expect(try await !store.renewStepLease(pipelineRunID: "pr1", step: "split", owner: owner, until: 9999))
        #expect(try await !store.finishStep(
            pipelineRunID: "pr1", step: "split", owner: owner, state: .succeeded, outputs: #"{"train":"x@1"}"#, cacheKey: "sha256:k",
            trackingRunID: nil, message: nil, at: 6100))
        #expect(try await store.finishStep(
            pipelineRunID: "pr1", step: "split", owner: "rescuer", state: .succeeded, outputs: #"{"train":"x@2"}"#, cacheKey: "sha256:k",
            trackingRunID: "t2", message: nil, at: 6200))
        split = try #require(try await store.stepRuns(pipelineRunID: "pr1").first { $0.step == "split" })
        #expect(split.state == .succeeded && split.outputs == #"{"train":"x@2"}"# && split.endTime == 6200 && split.trackingRunID == "t2")
        // Finished: no lease, no second commit.
        #expect(try await store.leaseStep(pipelineRunID: "pr1", step: "split", owner: "w9", until: 99_999, now: 99_000) == nil)
        #expect(try await !store.finishStep(
            pipelineRunID: "pr1", step: "split", owner: "rescuer", state: .failed, outputs: nil, cacheKey: nil, trackingRunID: nil,
            message: "late", at: 6300))
        // A pending step is finished without a lease (skipped), not with one it does not hold.
        #expect(try await !store.finishStep(
            pipelineRunID: "pr1", step: "train", owner: "w1", state: .skipped, outputs: nil, cacheKey: nil, trackingRunID: nil, message: nil, at: 6400))
        #expect(try await store.finishStep(
            pipelineRunID: "pr1", step: "train", owner: nil, state: .skipped, outputs: nil, cacheKey: nil, trackingRunID: nil,
            message: "gate failed", at: 6400))
        await #expect(throws: LoomError.self) {
            _ = try await store.finishStep(
                pipelineRunID: "pr1", step: "train", owner: nil, state: .running, outputs: nil, cacheKey: nil, trackingRunID: nil, message: nil, at: 1)
        }

        // A failed attempt with retries left gives the step back, attempts kept; only its holder can.
        try await store.createPipelineRun(
            PipelineRun(id: "pr3", pipeline: "churn", pipelineVersion: 2, parameters: "{}", createdBy: "bob", startTime: 6500), steps: ["flaky"])
        _ = try #require(try await store.leaseStep(pipelineRunID: "pr3", step: "flaky", owner: "r1", until: 7000, now: 6500))
        #expect(try await !store.releaseStep(pipelineRunID: "pr3", step: "flaky", owner: "r2", message: "not mine"))
        #expect(try await store.releaseStep(pipelineRunID: "pr3", step: "flaky", owner: "r1", message: "attempt 1: exit status 1"))
        var flaky = try #require(try await store.stepRuns(pipelineRunID: "pr3").first)
        #expect(flaky.state == .pending && flaky.attempts == 1 && flaky.leaseOwner == nil && flaky.message == "attempt 1: exit status 1")
        #expect(try await !store.releaseStep(pipelineRunID: "pr3", step: "flaky", owner: "r1", message: nil))
        _ = try #require(try await store.leaseStep(pipelineRunID: "pr3", step: "flaky", owner: "r1", until: 8000, now: 6600))
        flaky = try #require(try await store.stepRuns(pipelineRunID: "pr3").first)
        #expect(flaky.attempts == 2 && flaky.startTime == 6500)

        // The cache: the newest succeeded step with the key, in the workspace.
        #expect(try await store.cachedStepRun(cacheKey: "sha256:k", workspace: ws)?.outputs == #"{"train":"x@2"}"#)
        #expect(try await store.cachedStepRun(cacheKey: "sha256:k", workspace: "elsewhere") == nil)
        #expect(try await store.cachedStepRun(cacheKey: "sha256:other", workspace: ws) == nil)

        // A finished run stays finished.
        #expect(try await store.setPipelineRunState(id: "pr1", state: .succeeded, message: nil, trackingRunID: nil, at: 7000))
        #expect(try await !store.setPipelineRunState(id: "pr1", state: .failed, message: "late", trackingRunID: nil, at: 7100))
        let done = try #require(try await store.pipelineRun(id: "pr1"))
        #expect(done.state == .succeeded && done.endTime == 7000 && done.trackingRunID == "t1" && done.message == nil)
        #expect(try await store.unfinishedPipelineRuns().map(\.id) == ["pr3"])
        try await store.createPipelineRun(
            PipelineRun(id: "pr2", pipeline: "churn", pipelineVersion: 2, parameters: "{}", createdBy: "bob", startTime: 8000), steps: [])
        #expect(try await store.pipelineRuns(pipeline: "churn", workspace: ws, limit: 10).map(\.id) == ["pr2", "pr3", "pr1"])
        #expect(try await store.pipelineRuns(pipeline: "churn", workspace: ws, limit: 1).map(\.id) == ["pr2"])
        let summaries = try await store.pipelineSummaries(workspace: ws)
        #expect(summaries.map(\.name) == ["churn"])
        #expect(summaries.first?.versions == 2 && summaries.first?.runs == 3 && summaries.first?.lastRun?.id == "pr2")
        #expect(try await store.pipelineSummaries(workspace: "nobody").isEmpty)
    }

    /// Steps for workers: readied with what to run, leased oldest first (once each, also by
    /// racing workers), taken over after a lease expires, given back with a delay for a retry.
    public static func workerSteps(_ t: TrackingService) async throws {
        let store = t.store
        try await store.createPipelineRun(
            PipelineRun(id: "wr1", pipeline: "w", pipelineVersion: 1, parameters: "{}", createdBy: "ann", startTime: 100), steps: ["a", "b", "c"])
        #expect(try await store.leaseReadyStep(owner: "w1", until: 5000, now: 1000) == nil, "nothing ready yet")
        #expect(try await store.readyStep(pipelineRunID: "wr1", step: "a", invocation: #"{"command":"true"}"#, cacheKey: "k-a", notBefore: nil))
        #expect(try await !store.readyStep(pipelineRunID: "wr1", step: "a", invocation: "{}", cacheKey: nil, notBefore: nil), "only a pending step")
        #expect(try await store.readyStep(pipelineRunID: "wr1", step: "b", invocation: "{}", cacheKey: nil, notBefore: 3000))
        let leased = try #require(try await store.leaseReadyStep(owner: "w1", until: 5000, now: 1000))
        #expect(leased.step == "a" && leased.attempts == 1 && leased.invocation == #"{"command":"true"}"# && leased.cacheKey == "k-a")
        #expect(try await store.leaseReadyStep(owner: "w2", until: 5000, now: 1000) == nil, "b is not due before 3000")
        #expect(try await store.leaseReadyStep(owner: "w2", until: 9000, now: 3000)?.step == "b")
        // w1 dies: after its lease expires, another worker takes the step over.
        #expect(try await store.leaseReadyStep(owner: "w3", until: 9000, now: 4000) == nil)
        let taken = try #require(try await store.leaseReadyStep(owner: "w3", until: 9000, now: 6000))
        #expect(taken.step == "a" && taken.attempts == 2 && taken.leaseOwner == "w3")
        #expect(try await !store.finishStep(pipelineRunID: "wr1", step: "a", owner: "w1", state: .succeeded, outputs: "{}", cacheKey: nil, trackingRunID: nil, message: nil, at: 6500), "the dead worker cannot commit")
        // A failed attempt with retries left goes back, not before its delay.
        #expect(try await !store.requeueStep(pipelineRunID: "wr1", step: "a", owner: "w1", notBefore: 8000, message: "x"))
        #expect(try await store.requeueStep(pipelineRunID: "wr1", step: "a", owner: "w3", notBefore: 8000, message: "exit 1"))
        #expect(try await store.leaseReadyStep(owner: "w4", until: 20000, now: 7000) == nil)
        let retried = try #require(try await store.leaseReadyStep(owner: "w4", until: 20000, now: 8000))
        #expect(retried.step == "a" && retried.attempts == 3 && retried.message == "exit 1")
        #expect(try await store.finishStep(pipelineRunID: "wr1", step: "a", owner: "w4", state: .succeeded, outputs: "{}", cacheKey: nil, trackingRunID: "t", message: nil, at: 8500))
        // A step the server's own runner holds (no invocation) is never given to a worker.
        _ = try await store.leaseStep(pipelineRunID: "wr1", step: "c", owner: "server", until: 100, now: 50)
        #expect(try await store.leaseReadyStep(owner: "w5", until: 99999, now: 50000)?.step == "b", "b's lease expired; c is the server's")
        // Racing workers each get their own step.
        try await store.createPipelineRun(
            PipelineRun(id: "wr2", pipeline: "w", pipelineVersion: 1, parameters: "{}", createdBy: "ann", startTime: 200), steps: (0..<6).map { "s\($0)" })
        for i in 0..<6 { _ = try await store.readyStep(pipelineRunID: "wr2", step: "s\(i)", invocation: "{}", cacheKey: nil, notBefore: nil) }
        let got = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 0..<8 { group.addTask { try await store.leaseReadyStep(owner: "racer\(i)", until: 999_999, now: 60_000)?.step } }
            var all: [String] = []
            for try await s in group { if let s { all.append(s) } }
            return all
        }
        #expect(got.sorted() == (0..<6).map { "s\($0)" }, "each step leased once")
        // First in, first out across runs: the earlier run's step, whatever the names.
        try await store.createPipelineRun(
            PipelineRun(id: "zz-early", pipeline: "w", pipelineVersion: 1, parameters: "{}", createdBy: "ann", startTime: 300), steps: ["z"])
        try await store.createPipelineRun(
            PipelineRun(id: "aa-late", pipeline: "w", pipelineVersion: 1, parameters: "{}", createdBy: "ann", startTime: 400), steps: ["a"])
        _ = try await store.readyStep(pipelineRunID: "aa-late", step: "a", invocation: "{}", cacheKey: nil, notBefore: nil)
        _ = try await store.readyStep(pipelineRunID: "zz-early", step: "z", invocation: "{}", cacheKey: nil, notBefore: nil)
        #expect(try await store.leaseReadyStep(owner: "f", until: 999_999, now: 70_000)?.pipelineRunID == "zz-early")
        #expect(try await store.leaseReadyStep(owner: "f", until: 999_999, now: 70_000)?.pipelineRunID == "aa-late")
    }

    /// Endpoints and deployments: traffic names existing deployments, a stale update is
    /// refused, a live deployment cannot be deleted, every change bumps the generation.
    public static func endpoints(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        try await store.createEndpoint(Endpoint(name: "churn", description: "scores", samplingRate: 0.25, concurrencyLimit: 8, createdBy: "ann", creationTime: 100))
        await #expect(throws: LoomError.self) { try await store.createEndpoint(Endpoint(name: "churn", createdBy: "bob", creationTime: 101)) }
        try await store.createEndpoint(Endpoint(workspace: "other", name: "churn", createdBy: "bob", creationTime: 102))
        var e = try #require(try await store.endpoint(name: "churn", workspace: ws))
        #expect(e.samplingRate == 0.25 && e.concurrencyLimit == 8 && e.generation == 1 && e.traffic.isEmpty && e.auth == .workspace)
        #expect(try await store.endpoints(workspace: ws).map(\.name) == ["churn"])
        #expect(try await store.endpoints(workspace: nil).count == 2)

        let blue = Deployment(endpoint: "churn", name: "blue", model: "models:/churn/1", modelVersion: "churn/1", runtime: .native, createdBy: "ann", creationTime: 110)
        try await store.createDeployment(blue)
        await #expect(throws: LoomError.self) { try await store.createDeployment(blue) }
        await #expect(throws: LoomError.self, "no such endpoint") {
            try await store.createDeployment(Deployment(endpoint: "nope", name: "x", model: "", runtime: .external, createdBy: "ann", creationTime: 1))
        }
        let green = Deployment(
            endpoint: "churn", name: "green", model: "", runtime: .process,
            settings: .init(command: "serve --port $PORT", replicas: 2, environment: ["A": "1"]), createdBy: "ann", creationTime: 120)
        try await store.createDeployment(green)
        #expect(try await store.deployments(endpoint: "churn", workspace: ws) == [blue, green])
        #expect(try await store.deployments(endpoint: "churn", workspace: "other").isEmpty)

        e = try #require(try await store.endpoint(name: "churn", workspace: ws))
        #expect(e.generation == 3, "each deployment bumped it")
        var next = e
        next.traffic = ["blue": 100, "green": 0]
        next.mirror = ["green": 10]
        let saved = try #require(try await store.updateEndpoint(next))
        #expect(saved.generation == 4)
        #expect(try await store.endpoint(name: "churn", workspace: ws)?.traffic == ["blue": 100, "green": 0])
        #expect(try await store.updateEndpoint(next) == nil, "a stale generation is refused")
        var unknown = saved
        unknown.traffic = ["blue": 50, "ghost": 50]
        await #expect(throws: LoomError.self) { _ = try await store.updateEndpoint(unknown) }
        #expect(try await store.endpoint(name: "churn", workspace: ws)?.traffic == ["blue": 100, "green": 0], "unchanged")

        // Live or mirrored deployments stay.
        await #expect(throws: LoomError.self) { try await store.deleteDeployment(endpoint: "churn", name: "blue", workspace: ws) }
        await #expect(throws: LoomError.self) { try await store.deleteDeployment(endpoint: "churn", name: "green", workspace: ws) }
        await #expect(throws: LoomError.self) { try await store.deleteDeployment(endpoint: "churn", name: "ghost", workspace: ws) }
        var off = try #require(try await store.endpoint(name: "churn", workspace: ws))
        off.mirror = [:]
        _ = try #require(try await store.updateEndpoint(off))
        try await store.deleteDeployment(endpoint: "churn", name: "green", workspace: ws)
        let after = try #require(try await store.endpoint(name: "churn", workspace: ws))
        #expect(after.traffic == ["blue": 100] && after.generation == 6)
        var moved = blue
        moved.model = "models:/churn/2"
        moved.modelVersion = "churn/2"
        try await store.updateDeployment(moved)
        #expect(try await store.deployments(endpoint: "churn", workspace: ws).first?.modelVersion == "churn/2")

        #expect(try await store.deleteEndpoint(name: "churn", workspace: ws))
        #expect(try await !store.deleteEndpoint(name: "churn", workspace: ws))
        #expect(try await store.deployments(endpoint: "churn", workspace: ws).isEmpty)
        #expect(try await store.endpoint(name: "churn", workspace: "other") != nil)
    }

    /// Rollouts: one active per endpoint, driven by whoever holds the lease, decisions in order.
    public static func rollouts(_ t: TrackingService) async throws {
        let store = t.store
        let spec = RolloutSpec(strategy: .canary, model: "models:/m/2", deployment: "green", gates: [RolloutGate(metric: "error_rate", maxIncrease: 0.01)])
        func decision(_ id: String, _ kind: String, _ at: Millis) -> RolloutDecision {
            RolloutDecision(rolloutID: id, time: at, kind: kind, outcome: "ok", summary: "\(kind) at \(at)", detail: #"{"x": 1}"#, actor: "ann")
        }
        let r1 = Rollout(id: "r1", endpoint: "ep", spec: spec, baseline: "blue", previousTraffic: ["blue": 100], previousMirror: [:], createdBy: "ann", creationTime: 100)
        try await store.createRollout(r1, decision: decision("r1", "start", 100))
        let r2 = Rollout(id: "r2", endpoint: "ep", spec: spec, baseline: "blue", previousTraffic: ["blue": 100], previousMirror: [:], createdBy: "bob", creationTime: 110)
        await #expect(throws: LoomError.self, "one active rollout per endpoint") { try await store.createRollout(r2, decision: decision("r2", "start", 110)) }
        try await store.createRollout(
            Rollout(id: "r3", workspace: "other", endpoint: "ep", spec: spec, baseline: "b", previousTraffic: [:], previousMirror: [:], createdBy: "c", creationTime: 120),
            decision: decision("r3", "start", 120))
        #expect(try await store.rollout(id: "r1")?.spec == spec)
        #expect(try await store.activeRollouts().map(\.id) == ["r1", "r3"])

        // Whoever holds the lease drives it; others wait for it to expire.
        #expect(try await store.leaseRollout(id: "r1", owner: "a", until: 1000, now: 500))
        #expect(try await !store.leaseRollout(id: "r1", owner: "b", until: 1200, now: 900))
        #expect(try await store.leaseRollout(id: "r1", owner: "a", until: 1500, now: 900), "a renews")
        var next = try #require(try await store.rollout(id: "r1"))
        next.stage = 1
        next.stageStarted = 950
        next.lastUpdatedTime = 950
        #expect(try await !store.advanceRollout(next, owner: "b", handled: nil, decision: decision("r1", "step", 950)), "b does not hold it")
        #expect(try await store.advanceRollout(next, owner: "a", handled: nil, decision: decision("r1", "step", 950)))
        #expect(try await store.rollout(id: "r1")?.stage == 1)

        // A person's action waits for the driver, who clears it when carried out.
        #expect(try await store.requestRolloutAction(id: "r1", action: "pause", actor: "carol"))
        var paused = try #require(try await store.rollout(id: "r1"))
        #expect(paused.requestedAction == "pause" && paused.requestedBy == "carol")
        paused.state = .paused
        paused.lastUpdatedTime = 960
        #expect(try await store.advanceRollout(paused, owner: "a", handled: "pause", decision: decision("r1", "pause", 960)))
        #expect(try await store.rollout(id: "r1")?.requestedAction == nil)

        // The lease moves to b once a's expires; an ended rollout is nobody's and takes no action.
        #expect(try await store.leaseRollout(id: "r1", owner: "b", until: 3000, now: 2000))
        var ended = try #require(try await store.rollout(id: "r1"))
        ended.state = .rolledBack
        ended.endTime = 2100
        ended.lastUpdatedTime = 2100
        #expect(try await !store.advanceRollout(ended, owner: "a", handled: nil, decision: decision("r1", "rollback", 2100)), "a lost it")
        #expect(try await store.advanceRollout(ended, owner: "b", handled: nil, decision: decision("r1", "rollback", 2100)))
        #expect(try await !store.requestRolloutAction(id: "r1", action: "abort", actor: "carol"))
        #expect(try await !store.leaseRollout(id: "r1", owner: "b", until: 5000, now: 2200))
        #expect(try await store.rolloutDecisions(id: "r1").map(\.kind) == ["start", "step", "pause", "rollback"])
        #expect(try await store.rolloutDecisions(id: "r1").map(\.sequence) == [1, 2, 3, 4])
        #expect(try await store.rolloutDecisions(id: "r1").first?.detail == #"{"x": 1}"#)

        // Now the endpoint takes a new one; listings are newest first.
        try await store.createRollout(r2, decision: decision("r2", "start", 110))
        #expect(try await store.rollouts(endpoint: "ep", workspace: Workspace.defaultName, limit: 10).map(\.id) == ["r2", "r1"])
        #expect(try await store.rollouts(endpoint: "ep", workspace: Workspace.defaultName, limit: 1).map(\.id) == ["r2"])
    }

    /// Grounding indexes: specs applied by name, versions numbered in order with their
    /// documents (lineage), failed builds kept, deletion taking the versions along.
    public static func indexes(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        var (i, changed) = try await store.applyGroundingIndex(GroundingIndex(name: "docs", specText: "a", createdBy: "ann", creationTime: 10))
        #expect(changed && i.version == 1)
        (i, changed) = try await store.applyGroundingIndex(GroundingIndex(name: "docs", specText: "a", createdBy: "bob", creationTime: 20))
        #expect(!changed && i.version == 1 && i.lastUpdatedTime == 10)
        (i, changed) = try await store.applyGroundingIndex(GroundingIndex(name: "docs", specText: "b", createdBy: "bob", creationTime: 30))
        #expect(changed && i.version == 2 && i.createdBy == "ann" && i.specText == "b")
        _ = try await store.applyGroundingIndex(GroundingIndex(workspace: "other", name: "kb", specText: "x", createdBy: "c", creationTime: 5))
        #expect(try await store.groundingIndexes(workspace: ws).map(\.name) == ["docs"])
        #expect(try await store.groundingIndexes(workspace: nil).map { "\($0.workspace)/\($0.name)" } == ["\(ws)/docs", "other/kb"])
        #expect(try await store.groundingIndex(workspace: "other", name: "docs") == nil)

        var docs: [IndexDocument] = []
        for n in 0..<450 {
            let lang = n % 2 == 0 ? "en" : "de"
            let source = "d" + String(1000 + n).dropFirst() + ".md"
            docs.append(IndexDocument(
                source: source, digest: "sha256:\(n)", title: "Doc \(n)", metadata: ["lang": lang], chunks: Int64(n % 5), modifiedTime: Int64(1000 + n)))
        }
        let v1 = try await store.addIndexVersion(
            IndexVersion(workspace: ws, index: "docs", specVersion: 2, status: .ready, createdBy: "ann", creationTime: 40, documents: 450, chunks: 900,
                         contentDigest: "sha256:c1", artifactPath: "indexes/docs/1", details: "{\"k\":1}", newestSourceTime: 1449),
            documents: docs)
        #expect(v1.version == 1)
        let failed = try await store.addIndexVersion(
            IndexVersion(workspace: ws, index: "docs", specVersion: 2, status: .failed, createdBy: "ann", creationTime: 50, error: "route embed: 503"),
            documents: [])
        #expect(failed.version == 2)
        #expect(try await store.indexVersions(workspace: ws, index: "docs").map(\.version) == [2, 1])
        let read = try await store.indexVersion(workspace: ws, index: "docs", version: 1)
        #expect(read == v1)
        #expect(try await store.indexVersion(workspace: ws, index: "docs", version: 2)?.error == "route embed: 503")
        let held = try await store.indexDocuments(workspace: ws, index: "docs", version: 1)
        #expect(held.count == 450 && held.first == docs.first && held.last == docs.last && held[3].metadata == ["lang": "de"])
        #expect(try await store.indexDocuments(workspace: ws, index: "docs", version: 2).isEmpty)
        await #expect(throws: LoomError.self) {
            try await store.addIndexVersion(IndexVersion(workspace: ws, index: "nope", specVersion: 1, status: .ready, createdBy: "a", creationTime: 1), documents: [])
        }
        // The schedule's lease: one owner until it expires.
        #expect(try await store.leaseIndexSchedule(workspace: ws, name: "docs", owner: "r1", until: 1000, now: 500))
        #expect(try await !store.leaseIndexSchedule(workspace: ws, name: "docs", owner: "r2", until: 1100, now: 900))
        #expect(try await store.leaseIndexSchedule(workspace: ws, name: "docs", owner: "r1", until: 1200, now: 900))
        #expect(try await store.leaseIndexSchedule(workspace: ws, name: "docs", owner: "r2", until: 2000, now: 1300))
        #expect(try await !store.leaseIndexSchedule(workspace: ws, name: "nope", owner: "r2", until: 2000, now: 1300))
        #expect(try await store.groundingIndex(workspace: ws, name: "docs")?.specText == "b", "a lease leaves the spec as it is")
        #expect(try await store.deleteGroundingIndex(workspace: ws, name: "docs"))
        #expect(try await !store.deleteGroundingIndex(workspace: ws, name: "docs"))
        #expect(try await store.indexVersions(workspace: ws, index: "docs").isEmpty)
        #expect(try await store.indexDocuments(workspace: ws, index: "docs", version: 1).isEmpty)
    }

    /// Flows: each changed text a new version, the newest listed per name; evaluation runs
    /// created, claimed once while their heartbeat is fresh, their rows written (a row written
    /// again replaces the first), finished, listed newest first and deleted with their rows.
    public static func evaluations(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        var (f, changed) = try await store.applyFlow(FlowVersion(workspace: ws, name: "qa", specText: "a", createdBy: "ann", creationTime: 10))
        #expect(changed && f.version == 1)
        (f, changed) = try await store.applyFlow(FlowVersion(workspace: ws, name: "qa", specText: "a", createdBy: "bob", creationTime: 20))
        #expect(!changed && f.version == 1 && f.createdBy == "ann")
        (f, changed) = try await store.applyFlow(FlowVersion(workspace: ws, name: "qa", specText: "b", createdBy: "bob", creationTime: 30))
        #expect(changed && f.version == 2)
        _ = try await store.applyFlow(FlowVersion(workspace: ws, name: "chat", specText: "c", createdBy: "bob", creationTime: 40))
        _ = try await store.applyFlow(FlowVersion(workspace: "other", name: "zz", specText: "z", createdBy: "c", creationTime: 40))
        #expect(try await store.flows(workspace: ws).map { "\($0.name)@\($0.version)" } == ["chat@1", "qa@2"])
        #expect(try await store.flowVersion(workspace: ws, name: "qa", version: nil)?.specText == "b")
        #expect(try await store.flowVersion(workspace: ws, name: "qa", version: 1)?.specText == "a")
        #expect(try await store.flowVersion(workspace: ws, name: "qa", version: 3) == nil)
        #expect(try await store.flowVersions(workspace: ws, name: "qa").map(\.version) == [2, 1])
        #expect(try await store.deleteFlow(workspace: ws, name: "qa"))
        #expect(try await !store.deleteFlow(workspace: ws, name: "qa"))
        #expect(try await store.flowVersions(workspace: ws, name: "qa").isEmpty)

        let run = EvaluationRunRecord(
            id: "e1", workspace: ws, name: "docs-qa", createdBy: "ann", creationTime: 100, specText: "spec", flowText: "flow", flowRef: "qa@2",
            dataset: "questions@3", rowsText: "{\"question\":\"q\"}\n", rowCount: 1, failUnder: "f1=0.5")
        try await store.createEvaluationRun(run)
        try await store.createEvaluationRun(EvaluationRunRecord(
            id: "e2", workspace: ws, name: "other", createdBy: "ann", creationTime: 200, specText: "s", flowText: "f", dataset: "inline", rowsText: "", rowCount: 0))
        #expect(try await store.evaluationRun(id: "e1") == run)
        let listed = try await store.evaluationRuns(workspace: ws, name: nil, limit: 10)
        #expect(listed.map(\.id) == ["e2", "e1"] && listed[1].rowsText.isEmpty && listed[1].flowRef == "qa@2")
        #expect(try await store.evaluationRuns(workspace: ws, name: "docs-qa", limit: 10).map(\.id) == ["e1"])
        #expect(try await store.evaluationRuns(workspace: "other", name: nil, limit: 10).isEmpty)
        // Running with a fresh heartbeat: held; stale: claimed again.
        #expect(try await !store.claimEvaluationRun(id: "e1", staleBefore: 50, now: 150))
        #expect(try await store.claimEvaluationRun(id: "e1", staleBefore: 101, now: 150))
        #expect(try await store.evaluationRun(id: "e1")?.heartbeatTime == 150)
        try await store.heartbeatEvaluationRun(id: "e1", now: 170)
        #expect(try await store.evaluationRun(id: "e1")?.heartbeatTime == 170)
        await #expect(throws: LoomError.self) { _ = try await store.claimEvaluationRun(id: "nope", staleBefore: 0, now: 1) }

        var rows: [EvaluationRowRecord] = []
        for n in 1...250 {
            rows.append(EvaluationRowRecord(
                runId: "e1", variant: n % 2 == 0 ? "a" : "b", row: Int64(n), question: "q\(n)", answer: n == 7 ? nil : "a\(n)", traceId: "t\(n)",
                latencyMs: Double(n) / 4, error: n == 7 ? "row 7: boom" : nil, scores: "[{\"name\":\"f1\",\"score\":0.5}]"))
        }
        try await store.addEvaluationRows(rows)
        var held = try await store.evaluationRows(runId: "e1", variant: nil)
        #expect(held.count == 250 && held.first?.variant == "a" && held.first?.row == 2 && held.last?.row == 249)
        #expect(held.first { $0.row == 7 } == rows[6])
        try await store.addEvaluationRows([EvaluationRowRecord(runId: "e1", variant: "b", row: 7, question: "q7", answer: "fixed", latencyMs: 3, scores: "[]")])
        held = try await store.evaluationRows(runId: "e1", variant: "b")
        #expect(held.count == 125 && held.first { $0.row == 7 }?.answer == "fixed" && held.first { $0.row == 7 }?.error == nil)
        try await store.finishEvaluationRun(id: "e1", status: .finished, passed: false, error: nil, endTime: 300)
        let finished = try await store.evaluationRun(id: "e1")
        #expect(finished?.status == .finished && finished?.passed == false && finished?.endTime == 300)
        #expect(try await store.claimEvaluationRun(id: "e1", staleBefore: 0, now: 400))
        #expect(try await store.evaluationRun(id: "e1")?.passed == nil)
        #expect(try await store.deleteEvaluationRun(id: "e1"))
        #expect(try await !store.deleteEvaluationRun(id: "e1"))
        #expect(try await store.evaluationRows(runId: "e1", variant: nil).isEmpty)
    }

    /// The gateway: providers and routes applied by name (a changed text is a new version), the
    /// catalog upserted, keys created and revoked, usage summed per day and identity.
    public static func gateway(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        var (p, changed) = try await store.applyGatewayResource(GatewayResource(kind: .provider, name: "p1", specText: "a", createdBy: "ann", creationTime: 10))
        #expect(changed && p.version == 1)
        (p, changed) = try await store.applyGatewayResource(GatewayResource(kind: .provider, name: "p1", specText: "a", createdBy: "bob", creationTime: 20))
        #expect(!changed && p.version == 1 && p.lastUpdatedTime == 10)
        (p, changed) = try await store.applyGatewayResource(GatewayResource(kind: .provider, name: "p1", specText: "b", createdBy: "bob", creationTime: 30))
        #expect(changed && p.version == 2 && p.createdBy == "ann" && p.lastUpdatedTime == 30 && p.specText == "b")
        _ = try await store.applyGatewayResource(GatewayResource(kind: .route, name: "p1", specText: "r", createdBy: "ann", creationTime: 10))
        _ = try await store.applyGatewayResource(GatewayResource(workspace: "other", kind: .route, name: "r2", specText: "r", createdBy: "c", creationTime: 10))
        #expect(try await store.gatewayResources(workspace: ws, kind: nil).map { "\($0.kind.rawValue)/\($0.name)" } == ["provider/p1", "route/p1"])
        #expect(try await store.gatewayResources(workspace: nil, kind: .route).map { "\($0.workspace)/\($0.name)" } == ["\(ws)/p1", "other/r2"])
        #expect(try await store.deleteGatewayResource(kind: .route, name: "p1", workspace: ws))
        #expect(try await !store.deleteGatewayResource(kind: .route, name: "p1", workspace: ws))
        #expect(try await store.gatewayResources(workspace: ws, kind: nil).map(\.name) == ["p1"])

        try await store.upsertCatalogModels([
            CatalogModel(provider: "p1", model: "m-b", capabilities: ["chat", "tools"], contextLength: 8192, inputPrice: 0.5, outputPrice: 1.5, lastUpdatedTime: 1),
            CatalogModel(provider: "p1", model: "m-a", capabilities: ["embeddings"], source: "sync", lastUpdatedTime: 1),
        ])
        try await store.upsertCatalogModels([CatalogModel(provider: "p1", model: "m-b", capabilities: ["chat"], status: "deprecated", lastUpdatedTime: 2)])
        let catalog = try await store.catalogModels(workspace: ws, provider: nil)
        #expect(catalog.map(\.model) == ["m-a", "m-b"])
        #expect(catalog[1].capabilities == ["chat"] && catalog[1].status == "deprecated" && catalog[1].inputPrice == nil && catalog[1].isDeprecated)
        #expect(catalog[0].source == "sync" && catalog[0].capabilities == ["embeddings"])
        #expect(try await store.deleteCatalogModel(provider: "p1", model: "m-a", workspace: ws))
        #expect(try await store.catalogModels(workspace: ws, provider: "p1").map(\.model) == ["m-b"])

        let key = GatewayKey(id: "k1", name: "ci", prefix: "lgk_abc", keyHash: "h1", routes: ["chat"], requestsPerMinute: 60, spendPerDay: 2.5, createdBy: "ann", creationTime: 5)
        _ = try await store.createGatewayKey(key)
        await #expect(throws: (any Error).self) {
            _ = try await store.createGatewayKey(GatewayKey(id: "k2", name: "dup", prefix: "x", keyHash: "h1", createdBy: "ann", creationTime: 6))
        }
        #expect(try await store.gatewayKeys(workspace: ws) == [key])
        #expect(try await !store.revokeGatewayKey(id: "k1", workspace: "other", time: 7), "another workspace's key is not found")
        #expect(try await store.revokeGatewayKey(id: "k1", workspace: ws, time: 7))
        #expect(try await !store.revokeGatewayKey(id: "k1", workspace: ws, time: 8), "revoked once")
        #expect(try await store.gatewayKeys(workspace: nil).first?.revokedTime == 7)

        func usage(_ day: String, _ model: String, requests: Int64, cost: Double) -> GatewayUsage {
            GatewayUsage(day: day, key: "k1", route: "chat", provider: "p1", model: model, requests: requests, errors: 1, cached: 0, promptTokens: 10 * requests,
                completionTokens: 5 * requests, cost: cost)
        }
        try await store.addGatewayUsage([usage("2026-11-25", "m-b", requests: 2, cost: 0.25), usage("2026-11-26", "m-b", requests: 3, cost: 0.5)])
        try await store.addGatewayUsage([usage("2026-11-26", "m-b", requests: 4, cost: 0.125), usage("2026-11-26", "m-c", requests: 1, cost: 0)])
        let rows = try await store.gatewayUsage(workspace: ws, fromDay: "2026-11-26", toDay: "2026-11-26")
        #expect(rows.map(\.model) == ["m-b", "m-c"])
        #expect(rows[0].requests == 7 && rows[0].errors == 2 && rows[0].promptTokens == 70 && rows[0].completionTokens == 35 && rows[0].cost == 0.625)
        #expect(try await store.gatewayUsage(workspace: ws, fromDay: "2026-11-01", toDay: "2026-11-30").count == 3)
        #expect(try await store.gatewayUsage(workspace: "other", fromDay: "2026-11-01", toDay: "2026-11-30").isEmpty)

        func trace(_ id: String, _ route: String, _ status: Int, at time: Millis, workspace: String = ws) -> GatewayTrace {
            GatewayTrace(
                id: id, workspace: workspace, route: route, key: "k1", provider: "p1", model: "m-b", status: status, stream: status == 200,
                startTime: time, durationMicros: 1500, promptTokens: 10, completionTokens: 4, cost: 0.001, input: "[{\"role\":\"user\"}]",
                output: "hi", error: status >= 400 ? "boom" : nil, spansJSON: "[{\"name\":\"attempt\"}]")
        }
        try await store.addGatewayTraces([trace("t1", "chat", 200, at: 100), trace("t2", "chat", 502, at: 200), trace("t3", "embed", 200, at: 300)])
        try await store.addGatewayTraces([trace("t1", "chat", 500, at: 999), trace("t9", "chat", 200, at: 150, workspace: "other")])
        #expect(try await store.gatewayTraces(workspace: ws, route: nil, failedOnly: false, before: nil, limit: 10).map(\.id) == ["t3", "t2", "t1"])
        #expect(try await store.gatewayTraces(workspace: ws, route: "chat", failedOnly: false, before: nil, limit: 10).map(\.id) == ["t2", "t1"])
        #expect(try await store.gatewayTraces(workspace: ws, route: nil, failedOnly: true, before: nil, limit: 10).map(\.id) == ["t2"])
        #expect(try await store.gatewayTraces(workspace: ws, route: nil, failedOnly: false, before: 300, limit: 1).map(\.id) == ["t2"])
        let t1 = try #require(try await store.gatewayTrace(id: "t1", workspace: ws))
        #expect(t1 == trace("t1", "chat", 200, at: 100), "a trace id seen before is left as it was")
        #expect(try await store.gatewayTrace(id: "t9", workspace: ws) == nil)
        #expect(try await store.deleteGatewayTraces(before: 250) == 3)
        #expect(try await store.gatewayTraces(workspace: ws, route: nil, failedOnly: false, before: nil, limit: 10).map(\.id) == ["t3"])
        // A flush of more traces than one statement holds, with an id given twice in the same
        // statement (two calls continuing one traceparent): every trace once, the first kept.
        var many = (0..<120).map { trace("b\($0)", "chat", 200, at: 10_000 + Millis($0)) }
        many.insert(trace("b7", "chat", 503, at: 20_000), at: 20)
        try await store.addGatewayTraces(many)
        let stored = try await store.gatewayTraces(workspace: ws, route: "chat", failedOnly: false, before: nil, limit: 500)
        #expect(stored.count == 120 && Set(stored.map(\.id)).count == 120)
        #expect(try await store.gatewayTrace(id: "b7", workspace: ws) == trace("b7", "chat", 200, at: 10_007))
        #expect(try await store.gatewayTrace(id: "b119", workspace: ws) == trace("b119", "chat", 200, at: 10_119))
    }

    /// Monitors: applied by name (a changed spec is a new version), due by their next run,
    /// leased to one runner, passes recorded as time series with their alerts: one open per
    /// monitor and signal until the signal passes.
    public static func monitors(_ t: TrackingService) async throws {
        let store = t.store
        let spec = "name: m1\nendpoint: ep\n"
        var (m1, changed) = try await store.applyMonitor(Monitor(name: "m1", endpoint: "ep", specText: spec, nextRunTime: 1000, createdBy: "ann", creationTime: 100))
        #expect(changed && m1.version == 1 && m1.enabled && m1.nextRunTime == 1000)
        (m1, changed) = try await store.applyMonitor(Monitor(name: "m1", endpoint: "ep", specText: spec, nextRunTime: 5000, createdBy: "ann", creationTime: 200))
        #expect(!changed && m1.version == 1 && m1.nextRunTime == 1000, "the same text changes nothing")
        (m1, changed) = try await store.applyMonitor(
            Monitor(name: "m1", endpoint: "ep", specText: spec + "schedule: {every: 1h}\n", nextRunTime: 1500, createdBy: "bob", creationTime: 300))
        #expect(changed && m1.version == 2 && m1.nextRunTime == 1500 && m1.createdBy == "ann" && m1.lastUpdatedTime == 300)
        _ = try await store.applyMonitor(Monitor(name: "m0", endpoint: "ep", specText: "x", nextRunTime: nil, createdBy: "ann", creationTime: 100))
        _ = try await store.applyMonitor(Monitor(workspace: "other", name: "m1", endpoint: "ep", specText: "y", nextRunTime: 900, createdBy: "c", creationTime: 100))
        #expect(try await store.monitors(workspace: Workspace.defaultName).map(\.name) == ["m0", "m1"])
        #expect(try await store.monitor(name: "m1", workspace: "other")?.specText == "y")
        #expect(try await store.dueMonitors(now: 1000).map { "\($0.workspace)/\($0.name)" } == ["other/m1"])
        #expect(try await store.dueMonitors(now: 2000).map { "\($0.workspace)/\($0.name)" } == ["other/m1", "\(Workspace.defaultName)/m1"])

        #expect(try await store.leaseMonitor(name: "m1", workspace: Workspace.defaultName, owner: "a", until: 3000, now: 2000))
        #expect(try await !store.leaseMonitor(name: "m1", workspace: Workspace.defaultName, owner: "b", until: 3500, now: 2500))

        func result(_ pass: String, _ signal: String, _ passed: Bool, at time: Millis, value: Double? = 0.5) -> MonitorResult {
            MonitorResult(
                passID: pass, workspace: Workspace.defaultName, monitor: "m1", signal: signal, kind: signal, time: time, windowStart: time - 100,
                windowEnd: time, rows: 42, value: value, passed: passed, summary: "\(signal) \(passed ? "passed" : "failed")", detailJSON: #"{"k": 1}"#)
        }
        // Each opened or resolved alert makes a webhook call, in the pass's transaction.
        let hooks: @Sendable (AlertChanges) -> [WebhookDelivery] = { changes in
            (changes.opened.map { ("alert.opened", $0) } + changes.resolved.map { ("alert.resolved", $0) }).map { event, alert in
                WebhookDelivery(
                    id: "\(alert.id)-\(event)", workspace: alert.workspace, monitor: alert.monitor, alertID: alert.id, event: event, url: "http://hook/x",
                    secretEnv: "S", payload: #"{"signal": "\#(alert.signal)"}"#, nextAttemptTime: alert.resolvedTime ?? alert.openedTime,
                    creationTime: alert.resolvedTime ?? alert.openedTime)
            }
        }
        // Pass 1: drift fails (an alert opens), quality passes (nothing).
        var changes = try await store.recordMonitorPass(
            [result("p1", "data_drift", false, at: 2000), result("p1", "data_quality", true, at: 2000, value: nil)], monitor: "m1",
            workspace: Workspace.defaultName, nextRunTime: 5600, owner: "a", deliveries: hooks)
        #expect(changes.opened.map(\.signal) == ["data_drift"] && changes.continued.isEmpty && changes.resolved.isEmpty)
        let alertID = try #require(changes.opened.first?.id)
        let after = try #require(try await store.monitor(name: "m1", workspace: Workspace.defaultName))
        #expect(after.lastRunTime == 2000 && after.nextRunTime == 5600)
        #expect(try await store.leaseMonitor(name: "m1", workspace: Workspace.defaultName, owner: "b", until: 3500, now: 2500), "the pass released the lease")
        // Pass 2: drift fails again (the same alert, counted), quality fails (a second alert).
        changes = try await store.recordMonitorPass(
            [result("p2", "data_drift", false, at: 3000), result("p2", "data_quality", false, at: 3000)], monitor: "m1",
            workspace: Workspace.defaultName, nextRunTime: 6600, owner: nil, deliveries: hooks)
        #expect(changes.opened.map(\.signal) == ["data_quality"] && changes.continued.map(\.id) == [alertID])
        #expect(try await store.monitorAlert(id: alertID)?.count == 2)
        #expect(try await store.monitorAlert(id: alertID)?.lastPassID == "p2")
        // Pass 3: drift passes (its alert resolves); quality still fails.
        changes = try await store.recordMonitorPass(
            [result("p3", "data_drift", true, at: 4000), result("p3", "data_quality", false, at: 4000)], monitor: "m1",
            workspace: Workspace.defaultName, nextRunTime: 7600, owner: nil, deliveries: hooks)
        #expect(changes.resolved.map(\.id) == [alertID] && changes.continued.map(\.signal) == ["data_quality"])
        let resolved = try #require(try await store.monitorAlert(id: alertID))
        #expect(resolved.state == .resolved && resolved.resolvedTime == 4000 && resolved.firstPassID == "p1")
        // Pass 4: drift fails again: a new alert, since the last one resolved.
        changes = try await store.recordMonitorPass([result("p4", "data_drift", false, at: 5000)], monitor: "m1", workspace: Workspace.defaultName, nextRunTime: nil, owner: nil, deliveries: hooks)
        #expect(changes.opened.count == 1 && changes.opened[0].id != alertID)
        let reopened = changes.opened[0]
        // A skipped signal (nothing to judge) resolves nothing.
        var skipped = result("p4", "data_quality", true, at: 5000, value: nil)
        skipped.skipped = true
        changes = try await store.recordMonitorPass([skipped], monitor: "m1", workspace: Workspace.defaultName, nextRunTime: nil, owner: nil, deliveries: hooks)
        #expect(changes == AlertChanges())
        #expect(try await store.monitorResults(monitor: "m1", workspace: Workspace.defaultName, signal: "data_quality", limit: 1).first?.skipped == true)
        changes.opened = [reopened]
        #expect(try await store.monitorAlerts(workspace: Workspace.defaultName, monitor: "m1", state: .open, limit: 10).map(\.signal).sorted() == ["data_drift", "data_quality"])
        #expect(try await store.monitorAlerts(workspace: Workspace.defaultName, monitor: nil, state: nil, limit: 10).count == 3)
        #expect(try await store.monitorAlerts(workspace: "other", monitor: nil, state: nil, limit: 10).isEmpty)
        try await store.setAlertAction(id: changes.opened[0].id, runID: "run-9")
        #expect(try await store.monitorAlert(id: changes.opened[0].id)?.actionRunID == "run-9")
        #expect(try await store.alertsAwaitingAction(limit: 10).map(\.id) == [changes.opened[0].id])
        try await store.finishAlertAction(id: changes.opened[0].id, rolloutID: "ro-1", message: "rolled out")
        let acted = try #require(try await store.monitorAlert(id: changes.opened[0].id))
        #expect(acted.actionDone && acted.actionRolloutID == "ro-1" && acted.actionMessage == "rolled out")
        #expect(try await store.alertsAwaitingAction(limit: 10).isEmpty)

        // Calls: one per opened (3) and resolved (1) alert, due from their time, claimed by one.
        var calls = try await store.webhookDeliveries(workspace: Workspace.defaultName, monitor: "m1", limit: 10)
        #expect(calls.count == 4 && calls.filter { $0.event == "alert.resolved" }.map(\.alertID) == [alertID])
        #expect(try await store.dueWebhookDeliveries(now: 2500, limit: 10).map(\.event) == ["alert.opened"])
        let due = try await store.dueWebhookDeliveries(now: 10_000, limit: 10)
        #expect(due.count == 4 && due.first?.secretEnv == "S" && due.first?.payload.contains("signal") == true)
        let call = try #require(due.first)
        #expect(try await store.claimWebhookDelivery(id: call.id, owner: "a", until: 70_000, now: 10_000))
        #expect(try await !store.claimWebhookDelivery(id: call.id, owner: "b", until: 70_000, now: 10_000), "claimed by a")
        var retried = call
        retried.attempts = 1
        retried.lastStatus = 500
        retried.lastError = "HTTP 500"
        retried.nextAttemptTime = 15_000
        try await store.finishWebhookAttempt(retried)
        #expect(try await !store.dueWebhookDeliveries(now: 12_000, limit: 10).contains { $0.id == call.id })
        #expect(try await store.claimWebhookDelivery(id: call.id, owner: "b", until: 75_000, now: 15_000))
        var delivered = retried
        delivered.attempts = 2
        delivered.state = .delivered
        delivered.lastStatus = 204
        delivered.lastError = nil
        delivered.deliveredTime = 15_100
        try await store.finishWebhookAttempt(delivered)
        calls = try await store.webhookDeliveries(workspace: Workspace.defaultName, monitor: nil, limit: 10)
        let done = try #require(calls.first { $0.id == call.id })
        #expect(done.state == .delivered && done.attempts == 2 && done.lastStatus == 204 && done.lastError == nil && done.deliveredTime == 15_100)
        #expect(try await !store.dueWebhookDeliveries(now: 100_000, limit: 10).contains { $0.id == call.id })

        let series = try await store.monitorResults(monitor: "m1", workspace: Workspace.defaultName, signal: "data_drift", limit: 10)
        #expect(series.map(\.passID) == ["p4", "p3", "p2", "p1"])
        #expect(series.map(\.passed) == [false, true, false, false])
        #expect(series.first?.rows == 42 && series.first?.value == 0.5 && series.first?.detailJSON == #"{"k": 1}"#)
        #expect(try await store.monitorResults(monitor: "m1", workspace: Workspace.defaultName, signal: nil, limit: 3).count == 3)
        #expect(try await store.monitorResults(monitor: "m1", workspace: Workspace.defaultName, signal: "data_quality", limit: 10).last?.value == nil)
        await #expect(throws: LoomError.self) {
            _ = try await store.recordMonitorPass([result("p5", "x", true, at: 1)], monitor: "nope", workspace: Workspace.defaultName, nextRunTime: nil, owner: nil, deliveries: hooks)
        }

        #expect(try await store.deleteMonitor(name: "m1", workspace: Workspace.defaultName))
        #expect(try await !store.deleteMonitor(name: "m1", workspace: Workspace.defaultName))
        #expect(try await store.monitorResults(monitor: "m1", workspace: Workspace.defaultName, signal: nil, limit: 10).isEmpty)
        #expect(try await store.monitorAlerts(workspace: Workspace.defaultName, monitor: "m1", state: nil, limit: 10).isEmpty)
        #expect(try await store.webhookDeliveries(workspace: Workspace.defaultName, monitor: "m1", limit: 10).isEmpty)
        #expect(try await store.monitor(name: "m1", workspace: "other") != nil)
    }

    /// Applied pipelines are replaced by name; a trigger fires once per occasion.
    public static func appliedPipelines(_ t: TrackingService) async throws {
        let store = t.store
        try await store.applyPipeline(AppliedPipeline(name: "churn", version: 1, directory: "/p", appliedBy: "ann", appliedTime: 100))
        try await store.applyPipeline(AppliedPipeline(name: "alpha", version: 4, directory: nil, appliedBy: "ann", appliedTime: 150))
        try await store.applyPipeline(AppliedPipeline(workspace: "other", name: "churn", version: 9, directory: nil, appliedBy: "bob", appliedTime: 160))
        try await store.applyPipeline(AppliedPipeline(name: "churn", version: 2, directory: nil, appliedBy: "bob", appliedTime: 200))
        let mine = try await store.appliedPipelines(workspace: Workspace.defaultName)
        #expect(mine == [
            AppliedPipeline(name: "alpha", version: 4, directory: nil, appliedBy: "ann", appliedTime: 150),
            AppliedPipeline(name: "churn", version: 2, directory: nil, appliedBy: "bob", appliedTime: 200),
        ])
        #expect(try await store.appliedPipelines(workspace: nil).count == 3)
        let ws = Workspace.defaultName
        #expect(try await store.recordTriggerFiring(workspace: ws, pipeline: "churn", trigger: "schedule[0]", occasion: "03:00", pipelineRunID: "r1", at: 1))
        #expect(try await !store.recordTriggerFiring(workspace: ws, pipeline: "churn", trigger: "schedule[0]", occasion: "03:00", pipelineRunID: "r2", at: 2))
        #expect(try await store.recordTriggerFiring(workspace: ws, pipeline: "churn", trigger: "schedule[0]", occasion: "04:00", pipelineRunID: "r3", at: 3))
        #expect(try await store.recordTriggerFiring(workspace: "other", pipeline: "churn", trigger: "schedule[0]", occasion: "03:00", pipelineRunID: "r4", at: 4))
        // Racing firings of one occasion: exactly one wins.
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<8 {
                group.addTask {
                    try await store.recordTriggerFiring(workspace: ws, pipeline: "churn", trigger: "dataset", occasion: "customers@7", pipelineRunID: "race\(i)", at: 5)
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    /// Lineage edges: recorded once however often they are added, read both ways, per workspace.
    public static func lineage(_ t: TrackingService) async throws {
        let store = t.store
        let edges = [
            LineageEdge(source: "dataset:customers@1", target: "step:r1/split", relation: "input:data", creationTime: 10),
            LineageEdge(source: "step:r1/split", target: "dataset:customers-train@1", relation: "output:train", creationTime: 11),
            LineageEdge(source: "step:r1/split", target: "dataset:customers-test@1", relation: "output:test", creationTime: 12),
            LineageEdge(workspace: "other", source: "dataset:customers@1", target: "step:r9/x", relation: "input:data", creationTime: 13),
        ]
        try await store.addLineageEdges(edges)
        try await store.addLineageEdges(Array(edges.prefix(2)) + [LineageEdge(source: "dataset:customers@1", target: "step:r1/split", relation: "input:data", creationTime: 99)])
        let down = try await store.lineageEdges(of: "step:r1/split", direction: .downstream, workspace: Workspace.defaultName)
        #expect(down.map(\.target) == ["dataset:customers-train@1", "dataset:customers-test@1"])
        let up = try await store.lineageEdges(of: "step:r1/split", direction: .upstream, workspace: Workspace.defaultName)
        #expect(up == [edges[0]], "added twice, recorded once, as first recorded")
        #expect(try await store.lineageEdges(of: "dataset:customers@1", direction: .downstream, workspace: Workspace.defaultName).map(\.target) == ["step:r1/split"])
        #expect(try await store.lineageEdges(of: "dataset:customers@1", direction: .downstream, workspace: "other").map(\.target) == ["step:r9/x"])
        #expect(try await store.lineageEdges(of: "dataset:nothing@1", direction: .upstream, workspace: Workspace.defaultName).isEmpty)
    }

    public static func datasetVersions(_ t: TrackingService) async throws {
        let store = t.store
        let ws = Workspace.defaultName
        func new(_ name: String, _ digest: String, rows: Int64? = 10) -> DatasetVersion {
            DatasetVersion(
                name: name, workspace: ws, digest: digest, format: "csv", sourceType: "local", source: "/data/\(name).csv",
                storagePath: "datasets/\(name)/\(digest)", sizeBytes: 1234, rowCount: rows, schema: #"{"columns":[]}"#,
                profile: #"{"rows":10}"#, description: "first", lineage: nil, createdBy: "alice", creationTime: 1000)
        }
        let (v1, created1) = try await store.createDatasetVersion(new("sales", "sha256:aa"))
        #expect(created1 && v1.version == 1)
        #expect(v1 == new("sales", "sha256:aa").with(version: 1))
        // The same content again is the same version; other content is the next one.
        let (again, createdAgain) = try await store.createDatasetVersion(new("sales", "sha256:aa", rows: 99))
        #expect(!createdAgain && again == v1)
        let (v2, _) = try await store.createDatasetVersion(new("sales", "sha256:bb"))
        #expect(v2.version == 2)
        let (other, _) = try await store.createDatasetVersion(new("other", "sha256:aa"))
        #expect(other.version == 1)

        // Registrations of one name at once get distinct, consecutive numbers.
        let numbers = try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<8 { group.addTask { try await store.createDatasetVersion(new("race", "sha256:\(i)")).version.version } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(1...8))

        #expect(try await store.datasetVersion(name: "sales", version: 2, workspace: ws)?.digest == "sha256:bb")
        #expect(try await store.datasetVersion(name: "sales", digest: "sha256:aa", workspace: ws)?.version == 1)
        #expect(try await store.datasetVersion(name: "sales", version: 3, workspace: ws) == nil)
        #expect(try await store.datasetVersion(name: "sales", version: 1, workspace: "elsewhere") == nil)
        #expect(try await store.datasetVersions(name: "sales", workspace: ws).map(\.version) == [2, 1])
        let list = try await store.listDatasets(workspace: ws)
        #expect(list.map(\.name) == ["other", "race", "sales"])
        #expect(list.map(\.versions) == [1, 8, 2])
        #expect(list.last?.latest.digest == "sha256:bb")

        // A dataset an MLflow run logs is a version too.
        let e = try await t.createExperiment(name: "dsv", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let logged = Dataset(name: "sales", digest: "9f86d081", sourceType: "local", source: #"{"uri": "/tmp/sales.csv"}"#,
                             schema: #"{"mlflow_colspec": []}"#, profile: #"{"num_rows": 150, "num_elements": 600}"#)
        try await t.logInputs(runID: run.info.runID, datasets: [DatasetInput(tags: [], dataset: logged)], models: [])
        try await t.logInputs(runID: run.info.runID, datasets: [DatasetInput(tags: [], dataset: logged)], models: [])
        let fromMLflow = try #require(try await store.datasetVersion(name: "sales", digest: "9f86d081", workspace: ws))
        #expect(fromMLflow.version == 3 && fromMLflow.format == "mlflow" && fromMLflow.rowCount == 150)
        #expect(fromMLflow.source == logged.source && fromMLflow.schema == logged.schema)
        #expect(try await store.datasetVersions(name: "sales", workspace: ws).count == 3)

        let audit = try await store.auditEvents(AuditQuery(entityType: "dataset", entityID: "sales/2"))
        #expect(audit.items.map(\.action) == ["register_dataset"])
    }

    public static func access(_ store: any MetadataStore) async throws {
        let access = AccessService(store: store, bcryptCost: 4)
        let alice = try await access.createUser(username: "alice", password: "correct horse", isAdmin: false)
        await #expect(throws: LoomError.self) { _ = try await access.createUser(username: "alice", password: "another one", isAdmin: false) }
        #expect(try await access.authenticate(username: "alice", password: "correct horse").username == "alice")
        await #expect(throws: LoomError.self) { _ = try await access.authenticate(username: "alice", password: "wrong password") }
        let (token, secret) = try await access.createToken(for: alice, name: "ci", expiresAt: nil)
        #expect(secret.hasPrefix("loom_"))
        #expect(try await access.authenticate(token: secret).userID == alice.id)
        try await access.deleteToken(id: token.id, owner: alice.id)
        await #expect(throws: LoomError.self) { _ = try await access.authenticate(token: secret) }
        let actor = Actor(username: "alice", userID: alice.id)
        #expect(try await access.permission(actor, experimentID: "0", workspace: "default") == .noPermissions)
        try await store.setRole(username: "alice", workspace: "default", role: .viewer)
        #expect(try await access.permission(actor, experimentID: "0", workspace: "default") == .read)
        try await store.setResourcePermission(ResourcePermission(username: "alice", kind: .experiment, resource: "0", permission: .manage))
        #expect(try await access.permission(actor, experimentID: "0", workspace: "default") == .manage)
        #expect(try await access.permission(actor, experimentID: "1", workspace: "default") == .read)
        // Secrets are stored hashed: nothing in the users table equals the password.
        let (_, hash) = try await store.passwordHash(username: "alice")!
        #expect(hash != "correct horse" && hash.hasPrefix("$2"))
    }

    public static func audit(_ t: TrackingService) async throws {
        try await AuditContext.$current.withValue(AuditContext(actor: "carol", workspace: "default", origin: "test")) {
            _ = try await t.createExperiment(name: "audited", artifactLocation: nil, tags: [])
        }
        let events = try await t.store.auditEvents(AuditQuery(actor: "carol"))
        #expect(events.items.count == 1)
        #expect(events.items.first?.action == "create_experiment")
        #expect(events.items.first?.entityType == "experiment")
        // A failed change leaves no audit record.
        try? await AuditContext.$current.withValue(AuditContext(actor: "carol", origin: "test")) {
            _ = try await t.createExperiment(name: "audited", artifactLocation: nil, tags: [])
        }
        #expect(try await t.store.auditEvents(AuditQuery(actor: "carol")).items.count == 1)
    }

    /// Many concurrent writers: every acknowledged write is stored, and writes share commits.
    public static func groupCommit(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "concurrent", artifactLocation: nil, tags: [])
        let run = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let before = try await t.store.auditEvents(AuditQuery(maxResults: 1)).items.first?.id ?? 0
        let writers = 400
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<writers {
                group.addTask {
                    try await t.logMetric(runID: run.info.runID, metric: Metric(key: "m", value: Double(i), timestamp: Int64(i), step: Int64(i)))
                }
            }
            try await group.waitForAll()
        }
        let history = try await t.metricHistory(runID: run.info.runID, key: "m", maxResults: nil, pageToken: nil)
        #expect(history.items.count == writers)
        #expect(Set(history.items.map(\.step)).count == writers)
        let audits = try await t.store.auditEvents(AuditQuery(entityID: run.info.runID, maxResults: 1000))
        #expect(audits.items.filter { $0.id > before && $0.action == "log_metric" }.count == writers)
        // One conflicting write in the middle of concurrent writes fails alone.
        try await t.logParam(runID: run.info.runID, key: "p", value: "a")
        let results = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        try await t.logParam(runID: run.info.runID, key: i == 7 ? "p" : "q\(i)", value: i == 7 ? "b" : "x")
                        return true
                    } catch { return false }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { !$0 }.count == 1)
        #expect(try await t.run(id: run.info.runID).params.count == 20)

        // Concurrent writes share batches, and a batch upserts each run's latest value per key
        // once: the latest must still be the greatest (step, timestamp, value) over everything
        // that committed, and nothing from a write that failed.
        let latestRun = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: [])
        let rid = latestRun.info.runID
        try await t.logParam(runID: rid, key: "fixed", value: "1")
        let steps = (0..<120).map { ($0 * 37) % 120 }  // every step once, out of order
        let outcomes = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for (i, step) in steps.enumerated() {
                group.addTask {
                    do {
                        if i == 60 {
                            // Fails on the param, with a metric that would otherwise be the latest.
                            try await t.logBatch(runID: rid, metrics: [Metric(key: "acc", value: 99, timestamp: 1, step: 10_000)],
                                                 params: [Param(key: "fixed", value: "2")], tags: [])
                        } else {
                            try await t.logBatch(runID: rid, metrics: [
                                Metric(key: "acc", value: Double(step), timestamp: 5, step: Int64(step)),
                                Metric(key: "acc", value: -1, timestamp: 4, step: Int64(step)),
                                Metric(key: "loss", value: 1 / Double(step + 1), timestamp: Int64(1000 - step), step: 0),
                            ], params: [], tags: [])
                        }
                        return true
                    } catch { return false }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { !$0 }.count == 1)
        let latest = Dictionary(uniqueKeysWithValues: try await t.run(id: rid).metrics.map { ($0.key, $0) })
        let committedSteps = steps.enumerated().filter { $0.offset != 60 }.map(\.element)
        #expect(latest["acc"]?.step == Int64(committedSteps.max()!))
        #expect(latest["acc"]?.value == Double(committedSteps.max()!) && latest["acc"]?.timestamp == 5)
        // loss: all at step 0, so the greatest timestamp wins: the smallest committed step.
        let lossStep = committedSteps.min()!
        #expect(latest["loss"]?.timestamp == Int64(1000 - lossStep))
        #expect(latest["loss"]?.value == 1 / Double(lossStep + 1))
    }

    /// Metric history stays whole, ordered and free of duplicates however the store keeps its
    /// points: on SQLite small writes go to an append-only log that the writer merges into the
    /// clustered table every few hundred points, so these writes cross merges (reads see points
    /// in both places, and points logged again after their first copy was merged).
    public static func metricHistoryAcrossMerges(_ t: TrackingService) async throws {
        let e = try await t.createExperiment(name: "history", artifactLocation: nil, tags: [])
        let id = try await t.createRun(experimentID: e.id, userID: "u", startTime: nil, runName: nil, tags: []).info.runID
        func log(_ steps: Range<Int>, timestamp: Int64 = 1) async throws {
            for start in stride(from: steps.lowerBound, to: steps.upperBound, by: 100) {
                let chunk = start..<min(start + 100, steps.upperBound)
                try await t.logBatch(runID: id, metrics: chunk.map { Metric(key: "h", value: Double($0), timestamp: timestamp, step: Int64($0)) }, params: [], tags: [])
            }
        }
        func history() async throws -> [Metric] {
            var all: [Metric] = []
            var token: String?
            repeat {
                let page = try await t.metricHistory(runID: id, key: "h", maxResults: 250, pageToken: token)
                all += page.items
                token = page.nextPageToken
            } while token != nil
            return all
        }
        try await log(0..<300)
        try await log(5..<6)  // the same point again, while the first copy may still be unmerged
        var h = try await history()
        #expect(h.map(\.step) == (0..<300).map(Int64.init))
        try await log(300..<700)
        try await log(0..<10)  // again, after the first copies were merged
        try await t.logMetric(runID: id, metric: Metric(key: "h", value: 9, timestamp: 3, step: 2000))
        try await t.logMetric(runID: id, metric: Metric(key: "h", value: 1, timestamp: 5, step: 2000))
        try await t.logMetric(runID: id, metric: Metric(key: "h", value: .nan, timestamp: 4, step: 2000))
        try await t.logMetric(runID: id, metric: Metric(key: "other", value: 1, timestamp: 1, step: 1))
        h = try await history()
        #expect(h.count == 703)
        #expect(h.prefix(700).map(\.step) == (0..<700).map(Int64.init))
        #expect(h.prefix(700).allSatisfy { $0.value == Double($0.step) && $0.timestamp == 1 })
        #expect(h.suffix(3).map(\.timestamp) == [3, 4, 5], "equal steps in timestamp order")
        #expect(h[701].value.isNaN)
        let interval = try await t.metricHistoryBulkInterval(runIDs: [id], key: "h", startStep: 290, endStep: 310, maxResults: 100)
        #expect(interval.map(\.step) == (290...310).map(Int64.init))
        #expect(try await t.run(id: id).metrics.first { $0.key == "h" }?.timestamp == 5)
        #expect(try await t.metricHistory(runID: id, key: "other", maxResults: nil, pageToken: nil).items.count == 1)
    }

    public static func migrations(_ store: any MetadataStore) async throws {
        let first = try await store.appliedMigrations()
        #expect(first.contains(1))
        #expect(try await store.upgrade().isEmpty, "upgrading twice applies nothing")
        #expect(try await store.appliedMigrations() == first)
    }
}

extension DatasetVersion {
    func with(version: Int64) -> DatasetVersion {
        var v = self
        v.version = version
        return v
    }
}
