import ArgumentParser
import AsyncHTTPClient
import Foundation
import LoomCore
import LoomPipelines
import LoomTracking
import Logging
import NIOCore
import NIOHTTP1

/// `loom worker`: runs command steps that a server puts up for workers (docs/pipelines.md,
/// "Workers"), on this machine.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run pipeline command steps that a Loom server hands out (runs submitted with workers).",
        discussion: """
            Leases a waiting step, fetches its inputs through the server's artifact API, runs its command here (with \
            MLFLOW_TRACKING_URI pointing at the server and MLFLOW_RUN_ID at the attempt's run), uploads its outputs and logs \
            to the attempt's run, and reports; renews the lease while the command runs and stops it if the lease is lost. \
            Env: LOOM_SERVER, LOOM_TOKEN.
            """)

    @OptionGroup var connection: ServerOptions
    @Option(help: "This worker's name (default: host and process id).") var name: String?
    @Option(help: "Steps this worker runs at once.") var concurrency = 1
    @Option(help: "Seconds between asks when nothing waits.") var poll = 0.5
    @Option(help: "Folder commands run in (default: a fresh one per step).") var directory: String?

    func run() async throws {
        ProcessTimeZone.pinToGMT()
        guard concurrency >= 1 else { throw LoomError.invalidParameter("--concurrency must be at least 1") }
        let api = WorkerAPI(api: try connection.api(required: true))
        let base = api.base
        let worker = name ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        FileHandle.standardError.write(Data("loom worker \(worker): taking steps from \(base)\n".utf8))
        let directory = self.directory
        let poll = self.poll
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slot in 0..<concurrency {
                group.addTask {
                    while !Task.isCancelled {
                        guard let assignment = try? await api.lease(worker: worker) else {
                            try await Task.sleep(for: .milliseconds(Int(poll * 1000)))
                            continue
                        }
                        await Self.work(assignment, worker: worker, api: api, directory: directory, slot: slot)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Runs one leased step to its report.
    static func work(_ a: WorkerAPI.Assignment, worker: String, api: WorkerAPI, directory: String?, slot: Int) async {
        let log = { (text: String) in FileHandle.standardError.write(Data("loom worker \(worker): \(text)\n".utf8)) }
        do {
            let (_, step, parameters) = try a.invocation.parsed()
            log("running \(a.invocation.pipeline)/\(step.name) (run \(a.pipelineRunId.prefix(8)), attempt \(a.attempt))")
            let invocation = StepInvocation(
                pipeline: a.invocation.pipeline, pipelineRunID: a.pipelineRunId, workspace: a.invocation.workspace, step: step, options: [:],
                inputs: a.invocation.inputs, parameters: parameters, trackingRunID: a.trackingRunId, attempt: a.attempt, directory: directory)
            let operations = RemoteStepOperations(api: api, trackingRunID: a.trackingRunId)
            let result: Result<[String: StepValue], any Error> = await withTaskGroup(of: Result<[String: StepValue], any Error>?.self) { group in
                group.addTask {
                    do { return .success(try await CommandStep.run(invocation, operations: operations)) } catch { return .failure(error) }
                }
                group.addTask {
                    // Renewals; a lost lease (or a cancelled run) stops the command.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(max(100, Int(a.leaseSeconds * 1000 / 3))))
                        if Task.isCancelled { return nil }
                        if (try? await api.renew(worker: worker, run: a.pipelineRunId, step: step.name)) == false {
                            return .failure(CancellationError())
                        }
                    }
                    return nil
                }
                if let timeout = step.timeout {
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                        if Task.isCancelled { return nil }
                        return .failure(StepFailure("timed out after \(timeout) s", retryable: true))
                    }
                }
                var outcome: Result<[String: StepValue], any Error>?
                while let next = await group.next() {
                    if let next { outcome = next; break }
                }
                group.cancelAll()
                return outcome ?? .failure(CancellationError())
            }
            switch result {
            case .success(let outputs):
                var values: [String: String] = [:]
                for (k, v) in outputs where ![.dataset, .model, .file].contains(v.type) { values[k] = v.value }
                let ok = try await api.complete(worker: worker, run: a.pipelineRunId, step: step.name, trackingRunID: a.trackingRunId, outputs: values)
                log("\(step.name): \(ok ? "done" : "not committed (the lease was lost)")")
            case .failure(let error):
                if error is CancellationError {
                    log("\(step.name): stopped (the lease was lost or the run cancelled)")
                    return
                }
                let failure = error as? StepFailure ?? StepFailure(String(describing: error), retryable: true)
                _ = try await api.fail(worker: worker, run: a.pipelineRunId, step: step.name, trackingRunID: a.trackingRunId, message: failure.message, retryable: failure.retryable)
                log("\(step.name): failed: \(failure.message)")
            }
        } catch {
            log("could not finish \(a.pipelineRunId)/\(a.step): \(error)")
            _ = try? await api.fail(worker: worker, run: a.pipelineRunId, step: a.step, trackingRunID: a.trackingRunId, message: "the worker could not run it: \(error)", retryable: true)
        }
    }
}

/// The server's worker routes and artifact API, over HTTP.
struct WorkerAPI: Sendable {
    let api: ServerAPI
    var base: String { api.base }
    var token: String? { api.token }
    var client: HTTPClient { api.client }

    typealias Assignment = PipelineWorkers.Assignment

    func request(_ method: HTTPMethod, _ path: String, json: [String: Any]? = nil, body: ByteBuffer? = nil) -> HTTPClientRequest {
        api.request(method, path, json: json, body: body)
    }

    func call(_ method: HTTPMethod, _ path: String, json: [String: Any]? = nil, body: ByteBuffer? = nil) async throws -> (HTTPResponseStatus, ByteBuffer) {
        try await api.call(method, path, json: json, body: body)
    }

    func flag(_ data: ByteBuffer) -> Bool {
        ((try? JSONSerialization.jsonObject(with: Data(data.readableBytesView))) as? [String: Any])?["ok"] as? Bool ?? false
    }

    func lease(worker: String) async throws -> Assignment? {
        let (status, data) = try await call(.POST, "/api/v1/workers/lease", json: ["worker": worker])
        guard status == .ok else { return nil }
        return try JSONDecoder().decode(Assignment.self, from: Data(data.readableBytesView))
    }

    func renew(worker: String, run: String, step: String) async throws -> Bool {
        flag(try await call(.POST, "/api/v1/workers/renew", json: ["worker": worker, "pipeline_run_id": run, "step": step]).1)
    }

    func complete(worker: String, run: String, step: String, trackingRunID: String, outputs: [String: String]) async throws -> Bool {
        flag(try await call(.POST, "/api/v1/workers/complete", json: [
            "worker": worker, "pipeline_run_id": run, "step": step, "tracking_run_id": trackingRunID, "outputs": outputs]).1)
    }

    func fail(worker: String, run: String, step: String, trackingRunID: String, message: String, retryable: Bool) async throws -> Bool {
        flag(try await call(.POST, "/api/v1/workers/fail", json: [
            "worker": worker, "pipeline_run_id": run, "step": step, "tracking_run_id": trackingRunID, "message": message, "retryable": retryable]).1)
    }

    // MARK: Artifacts

    static func escape(_ path: String) -> String {
        path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? String($0) }
            .joined(separator: "/")
    }

    /// The artifact-store path of a run's artifacts (`EXPERIMENT/RUN/artifacts`).
    func runRoot(_ runID: String) async throws -> String {
        let (_, data) = try await call(.GET, "/api/2.0/mlflow/runs/get?run_id=\(runID)")
        guard let object = try JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any],
            let run = object["run"] as? [String: Any], let info = run["info"] as? [String: Any], let uri = info["artifact_uri"] as? String,
            uri.hasPrefix("mlflow-artifacts:") else {
            throw LoomError.unavailable("run \(runID) does not keep its artifacts on the server")
        }
        var path = String(uri.dropFirst("mlflow-artifacts:".count))
        while path.hasPrefix("/") { path.removeFirst() }
        return path
    }

    /// Downloads a stored file or folder (recursively) into `folder`; returns the local path.
    func download(_ path: String, into folder: String) async throws -> String {
        let name = (path as NSString).lastPathComponent
        let target = (folder as NSString).appendingPathComponent(name)
        let (_, listing) = try await call(.GET, "/api/2.0/mlflow-artifacts/artifacts?path=\(Self.escape(path))")
        let files = ((try? JSONSerialization.jsonObject(with: Data(listing.readableBytesView))) as? [String: Any])?["files"] as? [[String: Any]] ?? []
        if files.isEmpty {
            let (_, data) = try await call(.GET, "/api/2.0/mlflow-artifacts/artifacts/\(Self.escape(path))")
            try Data(data.readableBytesView).write(to: URL(fileURLWithPath: target))
            return target
        }
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for f in files {
            guard let child = f["path"] as? String else { continue }
            let childPath = path + "/" + (child as NSString).lastPathComponent
            if f["is_dir"] as? Bool == true {
                _ = try await download(childPath, into: target)
            } else {
                let (_, data) = try await call(.GET, "/api/2.0/mlflow-artifacts/artifacts/\(Self.escape(childPath))")
                try Data(data.readableBytesView).write(to: URL(fileURLWithPath: (target as NSString).appendingPathComponent((child as NSString).lastPathComponent)))
            }
        }
        return target
    }

    /// Uploads a local file or folder to `path`.
    func upload(_ local: String, to path: String) async throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: local, isDirectory: &isFolder) else { return }
        if !isFolder.boolValue {
            let data = try Data(contentsOf: URL(fileURLWithPath: local))
            _ = try await call(.PUT, "/api/2.0/mlflow-artifacts/artifacts/\(Self.escape(path))", body: ByteBuffer(bytes: data))
            return
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: local).sorted() {
            try await upload((local as NSString).appendingPathComponent(name), to: path + "/" + name)
        }
    }
}

/// A worker's view of Loom for command steps: inputs fetched from, outputs and logs sent to, the
/// server.
struct RemoteStepOperations: StepOperations {
    let api: WorkerAPI
    let trackingRunID: String

    var trackingURI: String? { api.base }

    func resolve(_ text: String, as type: ValueType, workspace: String, directory: String?) async throws -> StepValue {
        throw StepFailure("a worker does not resolve inputs")
    }
    func startTrackingRun(experiment: String, name: String, parentRunID: String?, tags: [String: String]) async throws -> String {
        throw StepFailure("a worker does not start tracking runs")
    }
    func endTrackingRun(id: String, status: String) async {}
    func perform(_ invocation: StepInvocation) async throws -> [String: StepValue] {
        throw StepFailure("a worker runs command steps only")
    }

    func localPath(of value: StepValue, staging: String) async throws -> String {
        var uri = value.value
        switch value.type {
        case .dataset:
            let parts = uri.split(separator: "@", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw StepFailure("a worker cannot read \(uri)") }
            let (_, data) = try await api.call(.GET, "/api/v1/datasets/\(WorkerAPI.escape(parts[0]))/versions/\(parts[1])")
            guard let object = try JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any],
                let stored = object["storage_path"] as? String else { throw StepFailure("dataset \(uri) has no copy on the server") }
            return try await api.download(stored, into: staging)
        case .model, .file:
            if uri.hasPrefix("models:/") {
                let rest = uri.dropFirst("models:/".count).split(separator: "/", maxSplits: 1).map(String.init)
                let (_, data) = try await api.call(.GET, "/api/2.0/mlflow/model-versions/get?name=\(WorkerAPI.escape(rest[0]))&version=\(rest.count > 1 ? rest[1] : "")")
                let object = try JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any]
                uri = ((object?["model_version"] as? [String: Any])?["source"] as? String) ?? uri
            }
            guard uri.hasPrefix("runs:/") else { throw StepFailure("a worker cannot read \(uri)") }
            let parts = uri.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).map(String.init)
            let root = try await api.runRoot(parts[0])
            return try await api.download(parts.count > 1 ? root + "/" + parts[1] : root, into: staging)
        default:
            return uri
        }
    }

    func commitOutput(name: String, type: ValueType, path: String, invocation: StepInvocation) async throws -> StepValue {
        switch type {
        case .dataset, .model, .file:
            try await api.upload(path, to: try await api.runRoot(trackingRunID) + "/" + name)
            return StepValue(type: type, value: "runs:/\(trackingRunID)/\(name)", digest: "")
        default:
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StepFailure("output '\(name)': the command wrote no value to the file $LOOM_OUTPUT_\(name.uppercased())")
            }
            return StepValue(type: type, value: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), digest: "")
        }
    }

    func logDestination(trackingRunID: String, name: String, staging: String) async throws -> LogDestination {
        LogDestination(path: (staging as NSString).appendingPathComponent(name), isStored: false)
    }

    func storeLog(trackingRunID: String, name: String, from path: String) async throws {
        try await api.upload(path, to: try await api.runRoot(trackingRunID) + "/logs/" + name)
    }
}
