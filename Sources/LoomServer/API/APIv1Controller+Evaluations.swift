import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomData
import LoomGenAI
import LoomTracking

/// `/api/v1/evaluations/...` (docs/evaluation.md): evaluation runs, stored as their rows
/// finish, listed, shown with their report so far, compared row by row, resumed, deleted.
extension APIv1Controller {
    struct EvaluationRunList: Encodable, Sendable {
        let runs: [EvaluationService.RunView]
    }

    func addEvaluationRoutes(to routes: Routes) {
        let p = Self.prefix + "/evaluations"
        let service = services.gateway.evaluationRuns
        let gateway = services.gateway
        let auth = self.auth

        // {spec: evaluation YAML, flow: a stored flow's NAME[@VERSION] or its YAML,
        //  rows: [{question, ...}] | dataset: NAME[@VERSION], fail_under, wait}
        routes.post("\(p)/run") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let specText = try body.requiredString("spec")
            // `flow`: a stored flow's NAME[@VERSION], or the flow's YAML (text with a line break or a colon).
            let (flowText, flowRef) = try await gateway.flowText(try body.requiredString("flow"), workspace: context.workspace)
            if Self.hasTools(try FlowSpec.parse(yaml: flowText)) { try await auth.requireRole(context, .admin) }
            let rows: [[String: JSONValue]]
            let dataset: String
            if let reference = try body.string("dataset") {
                guard body.fields["rows"] == nil else { throw LoomError.invalidParameter("rows and dataset: give the rows or a registered dataset, not both") }
                (rows, dataset) = try await gateway.datasetRows(reference, workspace: context.workspace)
            } else {
                rows = try body.array("rows").enumerated().map { i, row throws(LoomError) -> [String: JSONValue] in
                    guard let o = row.objectValue else { throw LoomError.invalidParameter("rows[\(i)] must be an object") }
                    return o
                }
                dataset = "inline"
            }
            let failUnder = try body.string("fail_under").flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            let run = try await service.create(
                specText: specText, flowText: flowText, flowRef: flowRef, rows: rows, dataset: dataset, failUnder: failUnder, workspace: context.workspace)
            if try body.bool("wait") == false {
                let workspace = context.workspace
                Task { _ = try? await service.execute(id: run.id, workspace: workspace, created: true) }
                return try Self.respond(try await service.view(id: run.id, workspace: workspace, withRows: false), status: .accepted)
            }
            return try Self.respond(try await service.execute(id: run.id, workspace: context.workspace, created: true))
        }
        // ?name=&max_results=: newest first.
        routes.get(p) { request, context in
            try await auth.requireRole(context, .viewer)
            let name = request.uri.queryParameters["name"].map(String.init)
            return try Self.respond(EvaluationRunList(runs: try await service.list(workspace: context.workspace, name: name, limit: try Self.limit(request))))
        }
        // ?rows=false leaves each variant's rows out.
        routes.get("\(p)/:id") { request, context in
            try await auth.requireRole(context, .viewer)
            let withRows = request.uri.queryParameters["rows"].map { $0 != "false" } ?? true
            return try Self.respond(try await service.view(id: try Self.param(context, "id"), workspace: context.workspace, withRows: withRows))
        }
        // ?a=&b=&metric=&changed=true&max_results=: two variants row by row, the largest differences first.
        routes.get("\(p)/:id/diff") { request, context in
            try await auth.requireRole(context, .viewer)
            let view = try await service.view(id: try Self.param(context, "id"), workspace: context.workspace)
            guard let report = view.report else { throw LoomError.invalidState("evaluation run \(view.id) has a spec that no longer parses") }
            let q = request.uri.queryParameters
            let diff = try EvaluationDiff(
                report: report, a: q["a"].map(String.init), b: q["b"].map(String.init), metric: q["metric"].map(String.init),
                changedOnly: q["changed"].map { $0 == "true" } ?? false, limit: try Self.limit(request, default: 1000))
            return try Self.respond(diff)
        }
        // {retry_failed, force, wait}: runs the rows it lacks.
        routes.post("\(p)/:id/resume") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .editor)
            let id = try Self.param(context, "id")
            // Resuming runs the flow again: as for starting a run, an administrator's when it calls tools.
            if Self.hasTools(try await service.flow(id: id, workspace: context.workspace)) { try await auth.requireRole(context, .admin) }
            let retry = try body.bool("retry_failed") ?? false
            let force = try body.bool("force") ?? false
            if try body.bool("wait") == false {
                let workspace = context.workspace
                // Claimed before answering, so that a refusal is the caller's answer.
                try await service.claim(id: id, workspace: workspace, force: force)
                Task { _ = try? await service.execute(id: id, workspace: workspace, retryFailed: retry, created: true) }
                return try Self.respond(try await service.view(id: id, workspace: workspace, withRows: false), status: .accepted)
            }
            return try Self.respond(try await service.execute(id: id, workspace: context.workspace, retryFailed: retry, force: force))
        }
        routes.delete("\(p)/:id") { _, context in
            try await auth.requireRole(context, .editor)
            try await service.delete(id: try Self.param(context, "id"), workspace: context.workspace)
            return Self.noContent
        }
    }
}
