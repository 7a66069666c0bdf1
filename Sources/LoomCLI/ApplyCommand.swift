import ArgumentParser
import Foundation
import LoomCore
import LoomGenAI
import LoomPipelines
import LoomSpec
import LoomStore
import LoomTracking
import NIOHTTP1
import Yams

/// `loom apply -f spec.yaml`: makes a spec the live one: a pipeline (whose schedules and
/// triggers `loom server` then fires), a rollout (`kind: rollout`, started on a running server), or
/// a monitor (`kind: monitor`, applied on a running server).
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Apply a spec: a pipeline becomes the version whose schedules and triggers the server fires; a rollout starts.",
        discussion: """
            The spec is checked whole first (every problem with its line and field). A pipeline is recorded as a new \
            version when its text changed, and applied with the spec's folder as the folder its command steps run in. \
            Its cron schedules (UTC) and dataset triggers fire in `loom server`; its webhooks at \
            POST /api/v1/pipelines/NAME/hooks/HOOK. See docs/pipelines.md.

            A spec with `kind: rollout` (endpoint, to, strategy, steps, bake, gates, ...) starts a rollout on a running \
            server (--server, default http://127.0.0.1:5000); --wait follows it. See docs/deployment.md.

            A spec with `kind: monitor` (endpoint, schedule, window, reference, signals, alerts, actions) becomes the \
            workspace's monitor of its name on a running server. See docs/monitoring.md.

            Specs with `kind: provider`, `route` or `policy` configure the LLM gateway (docs/gateway.md); `kind: index` \
            a grounding index (docs/indexes.md); `kind: flow` stores a flow as its next version (docs/flows.md). Both act on a running server.
            """)

    @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var storage: StoreOptions
    @OptionGroup var connection: ServerOptions
    @Flag(help: "A rollout: follow it until it ends (exit 1 unless it succeeds).") var wait = false

    struct Report: Encodable {
        var pipeline: String
        var version: Int64
        var created: Bool
        var schedules: [String]
        var nextRuns: [String]
        var triggers: Int
    }

    func run() async throws {
        if let rollout = try Self.rolloutSpec(file) { return try await applyRollout(rollout) }
        if let monitor = try Self.monitorSpec(file) { return try await applyMonitor(monitor) }
        if let (kind, text) = try Self.gatewaySpec(file) { return try await applyGateway(kind, text) }
        let (spec, _) = try PipelineCommand.load(file)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let directory = URL(fileURLWithPath: file).standardizedFileURL.deletingLastPathComponent().path
        let (applied, created) = try await tracking.store.applyPipeline(
            spec, text: text, directory: directory, workspace: Workspace.defaultName, actor: NSUserName())
        let formatter = ISO8601DateFormatter()
        let next = spec.schedules.map { $0.cron.next(after: Date()).map(formatter.string(from:)) ?? "never" }
        let report = Report(
            pipeline: spec.name, version: applied.version, created: created, schedules: spec.schedules.map(\.cron.expression), nextRuns: next,
            triggers: spec.triggers.count)
        if output.json { return try Output.json(report) }
        print("pipeline \(spec.name) version \(applied.version)\(created ? " (new)" : "") applied: \(spec.schedules.count) schedule\(spec.schedules.count == 1 ? "" : "s"), \(spec.triggers.count) trigger\(spec.triggers.count == 1 ? "" : "s")")
        for (s, n) in zip(report.schedules, next) { print("  \(s): next at \(n)") }
    }

    /// The body of a `kind: rollout` spec (its keys as the rollouts API takes them), or nil for
    /// another kind.
    static func rolloutSpec(_ file: String) throws -> [String: Any]? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("no file at \(file)") }
        guard let node = try? Yams.load(yaml: text) as? [String: Any], node["kind"] as? String == "rollout" else { return nil }
        var body = node
        body["kind"] = nil
        guard body["endpoint"] is String else { throw LoomError.invalidParameter("\(file): a rollout spec names its endpoint") }
        let known: Set<String> = [
            "endpoint", "to", "deployment", "strategy", "steps", "mirror", "bake", "gate_interval", "min_requests", "gates", "validation", "flow", "evaluation",
        ]
        if let unknown = body.keys.sorted().first(where: { !known.contains($0) }) {
            throw LoomError.invalidParameter("\(file): unknown key \(unknown) in a rollout spec (\(known.sorted().joined(separator: ", ")))")
        }
        // A flow rollout's evaluation names its spec file (relative to this one): sent as its text.
        if var evaluation = body["evaluation"] as? [String: Any], let path = evaluation["file"] as? String {
            let full = path.hasPrefix("/") ? path : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).path
            guard let spec = try? String(contentsOfFile: full, encoding: .utf8) else { throw LoomError.notFound("\(file): evaluation.file: no file at \(full)") }
            evaluation["file"] = nil
            evaluation["spec"] = spec
            body["evaluation"] = evaluation
        }
        return body
    }

    /// The text of a `kind: monitor` spec, or nil for another kind.
    static func monitorSpec(_ file: String) throws -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("no file at \(file)") }
        guard let node = try? Yams.load(yaml: text) as? [String: Any], node["kind"] as? String == "monitor" else { return nil }
        return text
    }

    /// The kind (`provider` or `route`) and text of a gateway spec, or nil for another kind.
    static func gatewaySpec(_ file: String) throws -> (String, String)? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("no file at \(file)") }
        guard let node = try? Yams.load(yaml: text) as? [String: Any], let kind = node["kind"] as? String, ["provider", "route", "policy", "index", "flow"].contains(kind) else { return nil }
        return (kind, text)
    }

    func applyGateway(_ kind: String, _ text: String) async throws {
        if kind == "flow" {
            // Checked here first: every problem with its line, before the server is asked.
            _ = try FlowSpec.parse(yaml: text, file: file)
            let r = try await connection.api().object(.POST, "/api/v1/flows", json: ["spec": text])
            if output.json { return try EndpointCommand.printJSON(r) }
            let f = r["flow"] as? [String: Any] ?? [:]
            print("flow \(f["name"] as? String ?? "?") version \(f["version"] as? Int ?? 0)\(r["changed"] as? Bool == true ? "" : " (unchanged)") applied; "
                + "run it with: loom flow run --flow \(f["name"] as? String ?? "NAME") --input ...")
            return
        }
        if kind == "index" {
            let r = try await connection.api().object(.POST, "/api/v1/indexes", json: ["spec": text])
            if output.json { return try EndpointCommand.printJSON(r) }
            let i = r["index"] as? [String: Any] ?? [:]
            print("index \(i["name"] as? String ?? "?") version \(i["version"] as? Int ?? 0)\(r["changed"] as? Bool == true ? "" : " (unchanged)") applied; "
                + "build it with: loom index build \(i["name"] as? String ?? "NAME")")
            return
        }
        let r = try await connection.api().object(.POST, "/api/v1/gateway/" + (GatewayResource.Kind(rawValue: kind)?.plural ?? kind), json: ["spec": text])
        if output.json { return try EndpointCommand.printJSON(r) }
        let changed = r["changed"] as? Bool ?? false
        print("\(kind) \(r["name"] as? String ?? "?") version \(r["version"] as? Int ?? 0)\(changed ? "" : " (unchanged)") applied")
    }

    func applyMonitor(_ text: String) async throws {
        let r = try await connection.api().object(.POST, "/api/v1/monitors", json: ["spec": text])
        if output.json { return try EndpointCommand.printJSON(r) }
        let m = r["monitor"] as? [String: Any] ?? [:]
        let changed = r["changed"] as? Bool ?? false
        print("monitor \(m["name"] as? String ?? "?") version \(m["version"] as? Int ?? 0)\(changed ? "" : " (unchanged)") applied to endpoint \(m["endpoint"] as? String ?? "?"): "
            + "\((m["signals"] as? [String] ?? []).joined(separator: ", ")); \(m["schedule"] as? String ?? "runs on demand (loom monitor run)")")
        if let next = m["next_run_time"] { print("  next pass at \(MonitorCommand.time(next))") }
    }

    func applyRollout(_ spec: [String: Any]) async throws {
        var body = spec
        let endpoint = body.removeValue(forKey: "endpoint") as? String ?? ""
        guard JSONSerialization.isValidJSONObject(body) else { throw LoomError.invalidParameter("\(file): the rollout spec holds values JSON cannot") }
        let api = try connection.api()
        let r = try await api.object(.POST, EndpointCommand.path(endpoint) + "/rollouts", json: body)
        if wait { return try await EndpointCommand.follow(api, endpoint: endpoint, id: r["id"] as? String ?? "", json: output.json) }
        try EndpointCommand.showRollout(r, json: output.json)
    }
}
