import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomPipelines
import LoomStore
import LoomTracking
import NIOCore

extension APIv1Controller {
    struct PipelineRunBody: Encodable, Sendable {
        let id: String
        let workspace: String
        let pipeline: String
        let pipelineVersion: Int64
        let parameters: JSONText
        let options: JSONText
        let state: String
        let trigger: String
        let trackingRunId: String?
        let message: String?
        let createdBy: String
        let startTime: Millis
        let endTime: Millis?

        init(_ r: PipelineRun) {
            (id, workspace, pipeline, pipelineVersion) = (r.id, r.workspace, r.pipeline, r.pipelineVersion)
            (parameters, options, state, trigger) = (JSONText(r.parameters), JSONText(r.options), r.state.rawValue, r.trigger)
            (trackingRunId, message, createdBy, startTime, endTime) = (r.trackingRunID, r.message, r.createdBy, r.startTime, r.endTime)
        }
    }

    struct StepRunBody: Encodable, Sendable {
        let step: String
        let state: String
        let attempts: Int
        let cacheKey: String?
        let outputs: JSONText?
        let trackingRunId: String?
        let message: String?
        let startTime: Millis?
        let endTime: Millis?

        init(_ s: StepRun) {
            (step, state, attempts, cacheKey) = (s.step, s.state.rawValue, s.attempts, s.cacheKey)
            (outputs, trackingRunId, message, startTime, endTime) = (s.outputs.map(JSONText.init), s.trackingRunID, s.message, s.startTime, s.endTime)
        }
    }

    struct PipelineRunDetail: Encodable, Sendable {
        let run: PipelineRunBody
        let steps: [StepRunBody]
    }

    struct PipelineVersionBody: Encodable, Sendable {
        let name: String
        let version: Int64
        let digest: String
        let spec: String
        let createdBy: String
        let creationTime: Millis
    }

    func addPipelineRoutes(to routes: Routes) {
        let runs = Self.prefix + "/pipeline-runs"
        // Submits a run of a spec; the server runs it (docs/pipelines.md).
        routes.post(runs) { request, context in
            let body = try await Self.body(request, context)
            let (spec, text, directory) = try await pipelineSpec(body, context)
            let parameters = try body.object("parameters").map(Self.parameterValues) ?? [:]
            let options = PipelineRunOptions(
                noCache: try body.bool("no_cache") ?? false, directory: directory, concurrency: try body.int("concurrency"),
                workers: try body.bool("workers") ?? false)
            guard let service = services.pipelines, let runner = service.runner else {
                throw LoomError.unavailable("This server does not run pipelines (or has not started yet)")
            }
            let run = try await runner.submit(spec: spec, text: text, parameters: parameters, options: options, workspace: context.workspace)
            service.start(runID: run.id)
            return try Self.respond(PipelineRunBody(run), status: .created)
        }
        routes.get("\(runs)/:id") { _, context in
            let run = try await pipelineRun(context)
            let steps = try await tracking.store.stepRuns(pipelineRunID: run.id)
            return try Self.respond(PipelineRunDetail(run: PipelineRunBody(run), steps: steps.map(StepRunBody.init)))
        }
        routes.post("\(runs)/:id/cancel") { _, context in
            let run = try await pipelineRun(context, role: .editor)
            let cancelled = try await tracking.store.setPipelineRunState(
                id: run.id, state: .cancelled, message: "cancelled by \(context.actor.username)", trackingRunID: nil,
                at: Clock.nowMillis())
            guard cancelled else { throw LoomError.invalidState("Pipeline run \(run.id) has already \(run.state.rawValue)") }
            return try Self.respond(PipelineRunBody(try await pipelineRun(context)))
        }
        // A command step's output from byte `offset` on, as text; `Loom-Step-State` says whether
        // more may come (`running`, `pending`) and `Loom-Log-Next-Offset` where to go on from.
        routes.get("\(runs)/:id/steps/:step/logs") { request, context in
            let run = try await pipelineRun(context)
            let name = try Self.param(context, "step")
            let stream = request.query["stream"] ?? "stdout"
            let offset = try request.query.int64("offset") ?? 0
            guard let step = try await tracking.store.stepRuns(pipelineRunID: run.id).first(where: { $0.step == name }) else {
                throw LoomError.notFound("Pipeline run \(run.id) has no step \(name)")
            }
            let bytes = try await tracking.stepLog(run, step, stream: stream, from: offset)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            headers[HTTPField.Name("Loom-Step-State")!] = step.state.rawValue
            headers[HTTPField.Name("Loom-Log-Next-Offset")!] = String(offset + Int64(bytes.count))
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let pipelines = Self.prefix + "/pipelines"
        // Applies a spec: its version becomes the one whose schedules and triggers fire.
        routes.post(pipelines) { request, context in
            let body = try await Self.body(request, context)
            let (spec, text, directory) = try await pipelineSpec(body, context)
            let (applied, _) = try await tracking.store.applyPipeline(
                spec, text: text, directory: directory, workspace: context.workspace, actor: context.actor.username)
            return try Self.respond(AppliedPipelineBody(applied), status: .created)
        }
        routes.get(pipelines) { _, context in
            try await auth.requireRole(context, .viewer)
            let list = try await tracking.store.appliedPipelines(workspace: context.workspace)
            return try Self.respond(Listing(items: list.map(AppliedPipelineBody.init), nextPageToken: nil))
        }
        routes.post("\(pipelines)/:name/hooks/:hook") { request, context in
            let name = try Self.param(context, "name")
            let hook = try Self.param(context, "hook")
            // The body is optional: `{"parameters": {...}}` over the trigger's own.
            let raw = try await request.body.collect(upTo: context.maxUploadSize)
            let body = raw.readableBytes == 0 ? nil : try JSONBody.parse(Data(raw.readableBytesView))
            try await auth.requireRole(context, .editor)
            let parameters = try body?.object("parameters").map(Self.parameterValues) ?? [:]
            guard let service = services.pipelines, let scheduler = service.scheduler else {
                throw LoomError.unavailable("This server does not run pipelines (or has not started yet)")
            }
            let run = try await scheduler.webhook(pipeline: name, hook: hook, parameters: parameters, workspace: context.workspace)
            service.start(runID: run.id)
            return try Self.respond(PipelineRunBody(run), status: .created)
        }
        routes.get("\(pipelines)/:name/runs") { request, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let limit = try request.query.int("max_results") ?? 100
            guard (1...1000).contains(limit) else { throw LoomError.invalidParameter("max_results must be between 1 and 1000") }
            let list = try await tracking.store.pipelineRuns(pipeline: name, workspace: context.workspace, limit: limit)
            return try Self.respond(Listing(items: list.map(PipelineRunBody.init), nextPageToken: nil))
        }
        routes.get("\(pipelines)/:name/versions") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let versions = try await tracking.store.pipelineVersions(name: name, workspace: context.workspace)
            guard !versions.isEmpty else { throw LoomError.notFound("No pipeline named \(name)") }
            return try Self.respond(Listing(
                items: versions.map { PipelineVersionBody(name: $0.name, version: $0.version, digest: $0.digest, spec: $0.spec, createdBy: $0.createdBy, creationTime: $0.creationTime) },
                nextPageToken: nil))
        }
    }

    /// The `spec` of a submit or apply body, with its text and `directory`, for an editor; a spec
    /// with command steps, or a directory to run them in, runs programs on the server and needs an
    /// administrator.
    func pipelineSpec(_ body: JSONBody, _ context: LoomRequestContext) async throws -> (PipelineSpec, String, String?) {
        let text = try body.requiredString("spec")
        try await auth.requireRole(context, .editor)
        let spec = try PipelineSpec.parse(yaml: text, file: "spec")
        let directory = try body.string("directory")
        if directory != nil || spec.steps.contains(where: { $0.kind == .command }) { try await auth.requireRole(context, .admin) }
        return (spec, text, directory)
    }

    /// The worker protocol (docs/pipelines.md, "Workers"): lease, renew, complete, fail.
    func addWorkerRoutes(to routes: Routes) {
        let p = Self.prefix + "/workers"
        let workers = PipelineWorkers(tracking: tracking, leaseSeconds: services.configuration.workerLeaseSeconds)
        struct Flag: Encodable, Sendable { let ok: Bool }
        routes.post("\(p)/lease") { request, context in
            let body = try await Self.body(request, context)
            let worker = try body.requiredString("worker")
            try await auth.requireRole(context, .editor)
            guard let assignment = try await workers.lease(worker: worker) else { return Self.noContent }
            return try Self.respond(assignment)
        }
        routes.post("\(p)/renew") { request, context in
            let body = try await Self.body(request, context)
            let (worker, run, step) = (try body.requiredString("worker"), try body.requiredString("pipeline_run_id"), try body.requiredString("step"))
            try await auth.requireRole(context, .editor)
            return try Self.respond(Flag(ok: try await workers.renew(worker: worker, pipelineRunID: run, step: step)))
        }
        routes.post("\(p)/complete") { request, context in
            let body = try await Self.body(request, context)
            let (worker, run, step) = (try body.requiredString("worker"), try body.requiredString("pipeline_run_id"), try body.requiredString("step"))
            let trackingRun = try body.requiredString("tracking_run_id")
            var outputs: [String: String] = [:]
            if let given = try body.object("outputs") {
                for key in given.fields.keys { outputs[key] = try given.requiredString(key) }
            }
            try await auth.requireRole(context, .editor)
            let ok = try await workers.complete(worker: worker, pipelineRunID: run, step: step, trackingRunID: trackingRun, outputs: outputs)
            services.pipelines?.runner?.nudge(runID: run)
            return try Self.respond(Flag(ok: ok))
        }
        routes.post("\(p)/fail") { request, context in
            let body = try await Self.body(request, context)
            let (worker, run, step) = (try body.requiredString("worker"), try body.requiredString("pipeline_run_id"), try body.requiredString("step"))
            let message = try body.requiredString("message")
            try await auth.requireRole(context, .editor)
            let recorded = try await workers.fail(
                worker: worker, pipelineRunID: run, step: step, trackingRunID: try body.string("tracking_run_id"), message: message,
                retryable: try body.bool("retryable") ?? true)
            services.pipelines?.runner?.nudge(runID: run)
            return try Self.respond(Flag(ok: recorded))
        }
    }

    func addLineageRoutes(to routes: Routes) {
        routes.get(Self.prefix + "/lineage") { request, context in
            let text = try request.query.required("node")
            try await auth.requireRole(context, .viewer)
            let directions: [LineageDirection]
            switch request.query["direction"] ?? "both" {
            case "both": directions = LineageDirection.allCases
            case "upstream": directions = [.upstream]
            case "downstream": directions = [.downstream]
            case let other: throw LoomError.invalidParameter("direction must be upstream, downstream or both, not '\(other)'")
            }
            let depth = try request.query.int("depth") ?? 50
            guard (1...1000).contains(depth) else { throw LoomError.invalidParameter("depth must be between 1 and 1000") }
            let node = try await tracking.lineageNode(text, workspace: context.workspace)
            return try Self.respond(try await tracking.lineage(of: node, directions: directions, depth: depth, workspace: context.workspace))
        }
    }

    struct AppliedPipelineBody: Encodable, Sendable {
        let name: String
        let version: Int64
        let directory: String?
        let appliedBy: String
        let appliedTime: Millis
        init(_ a: AppliedPipeline) {
            (name, version, directory, appliedBy, appliedTime) = (a.name, a.version, a.directory, a.appliedBy, a.appliedTime)
        }
    }

    /// `{"name": value}` with string, number or boolean values, as run parameters.
    static func parameterValues(_ given: JSONBody) throws -> [String: ParameterValue] {
        var parameters: [String: ParameterValue] = [:]
        for (key, value) in given.fields {
            switch value {
            case .string(let s): parameters[key] = .string(s)
            case .bool(let b): parameters[key] = .boolean(b)
            case .number(let d, let raw): parameters[key] = raw.flatMap { Int($0) }.map(ParameterValue.integer) ?? .number(d)
            default: throw LoomError.invalidParameter("Invalid value for 'parameters.\(key)': expected a string, number or boolean")
            }
        }
        return parameters
    }

    /// The run named by `:id` in the caller's workspace (another workspace's is not found).
    func pipelineRun(_ context: Context, role: Role = .viewer) async throws -> PipelineRun {
        let id = try Self.param(context, "id")
        try await auth.requireRole(context, role)
        guard let run = try await tracking.store.pipelineRun(id: id), run.workspace == context.workspace else {
            throw LoomError.notFound("No pipeline run \(id)")
        }
        return run
    }
}
