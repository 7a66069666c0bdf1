import ArgumentParser
import Foundation
import LoomCore
import NIOCore
import NIOHTTP1

/// `loom endpoint ...`: online endpoints, through a running server's API (docs/deployment.md).
struct EndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint",
        abstract: "Online endpoints: create, deploy models, split and mirror traffic, score.",
        discussion: "These commands act through a running server (--server, default http://127.0.0.1:5000).",
        subcommands: [
            Create.self, List.self, Show.self, Update.self, Delete.self, Deploy.self, Undeploy.self, Traffic.self, Invoke.self, Labels.self,
            Rollout.self, Rollouts.self, Promote.self, Pause.self, Resume.self, Abort.self,
        ])

    /// Endpoint settings shared by create and update.
    struct Settings: ParsableArguments {
        @Option(help: "A description.") var description: String?
        @Option(help: "workspace (the server's auth) or key (a key of the endpoint's own).") var auth: String?
        @Option(help: "A request header whose value pins a caller to one deployment.") var stickyHeader: String?
        @Option(help: "The share of requests (0 to 1) whose request and response are collected.") var samplingRate: Double?
        @Option(help: "Requests in flight at once before more are shed with 429 (0: no limit).") var concurrencyLimit: Int?
        @Option(help: "Milliseconds a request may take before 504.") var timeoutMs: Int?
        @Option(help: "The largest request body, in bytes.") var maxBodyBytes: Int?

        var json: [String: Any] {
            var b: [String: Any] = [:]
            if let description { b["description"] = description }
            if let auth { b["auth"] = auth }
            if let stickyHeader { b["sticky_header"] = stickyHeader.isEmpty ? NSNull() : stickyHeader }
            if let samplingRate { b["sampling_rate"] = samplingRate }
            if let concurrencyLimit { b["concurrency_limit"] = concurrencyLimit == 0 ? NSNull() : concurrencyLimit }
            if let timeoutMs { b["timeout_ms"] = timeoutMs }
            if let maxBodyBytes { b["max_body_bytes"] = maxBodyBytes }
            return b
        }
    }

    static func path(_ name: String) -> String { "/api/v1/endpoints/\(ServerAPI.escape(name))" }

    /// Prints an endpoint answer: as JSON, or a summary and its deployments.
    static func show(_ e: [String: Any], json: Bool, base: String) throws {
        if json { return try printJSON(e) }
        let name = e["name"] as? String ?? "?"
        print("endpoint \(name): \(base)\(e["scoring_uri"] as? String ?? "")")
        if let key = e["key"] as? String { print("  key: \(key)  (shown once: keep it)") }
        let limit = (e["concurrency_limit"] as? Int).map(String.init) ?? "none"
        print("  auth \(e["auth"] as? String ?? "?"), sampling \(e["sampling_rate"] as? Double ?? 0), timeout \(e["timeout_ms"] as? Int ?? 0) ms, concurrency limit \(limit)\((e["sticky_header"] as? String).map { ", sticky by \($0)" } ?? "")")
        print("  traffic: \(weights(e["traffic"]))\(weights(e["mirror"]).isEmpty || weights(e["mirror"]) == "none" ? "" : "; mirror: \(weights(e["mirror"]))")")
        guard let deployments = e["deployments"] as? [[String: Any]], !deployments.isEmpty else { return }
        Output.table(["DEPLOYMENT", "RUNTIME", "MODEL", "VERSION", "TRAFFIC", "MIRROR", "READY"], deployments.map { d in
            var ready = (d["ready"] as? Bool ?? false) ? "yes" : "no"
            if let replicas = d["replicas"] as? [[String: Any]] {
                let up = replicas.filter { $0["ready"] as? Bool == true }.count
                let restarts = replicas.reduce(0) { $0 + ($1["restarts"] as? Int ?? 0) }
                ready = "\(up)/\(replicas.count)" + (restarts > 0 ? " (\(restarts) restart\(restarts == 1 ? "" : "s"))" : "")
            }
            return [d["name"] as? String ?? "?", d["runtime"] as? String ?? "?", d["model"] as? String ?? "", d["model_version"] as? String ?? "-",
                    "\(d["traffic"] as? Int ?? 0)%", "\(d["mirror"] as? Int ?? 0)%", ready]
        })
    }

    static func weights(_ value: Any?) -> String {
        guard let map = value as? [String: Int], !map.isEmpty else { return "none" }
        return map.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)%" }.joined(separator: ", ")
    }

    static func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an endpoint (no deployments, no traffic yet).")
        @Argument(help: "The endpoint's name (letters, digits, - and _).") var name: String
        @OptionGroup var settings: Settings
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try connection.api()
            var body = settings.json
            body["name"] = name
            try EndpointCommand.show(try await api.object(.POST, "/api/v1/endpoints", json: body), json: output.json, base: api.base)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let listing = try await connection.api().object(.GET, "/api/v1/endpoints")
            let items = listing["items"] as? [[String: Any]] ?? []
            if output.json { return try printJSON(items) }
            Output.table(["NAME", "AUTH", "TRAFFIC", "MIRROR", "SAMPLING"], items.map { e in
                [e["name"] as? String ?? "?", e["auth"] as? String ?? "?", weights(e["traffic"]), weights(e["mirror"]), "\(e["sampling_rate"] as? Double ?? 0)"]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an endpoint, its traffic and its deployments.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try connection.api()
            try EndpointCommand.show(try await api.object(.GET, EndpointCommand.path(name)), json: output.json, base: api.base)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change an endpoint's settings.")
        @Argument var name: String
        @OptionGroup var settings: Settings
        @Flag(help: "Make a new key (key auth); the old one stops working.") var regenerateKey = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try connection.api()
            var body = settings.json
            if regenerateKey { body["regenerate_key"] = true }
            guard !body.isEmpty else { throw LoomError.invalidParameter("nothing to change: give a setting or --regenerate-key") }
            try EndpointCommand.show(try await api.object(.PATCH, EndpointCommand.path(name), json: body), json: output.json, base: api.base)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an endpoint and its deployments.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().call(.DELETE, EndpointCommand.path(name))
            print("deleted endpoint \(name)")
        }
    }

    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a deployment to an endpoint, or point one at another model (--update).",
            discussion: """
                native: a Loom model served in the server's process (--model models:/NAME@ALIAS).
                process: a command Loom runs, health-checks and restarts, e.g.
                  --runtime process --command 'mlflow models serve -m models:/churn/3 -p $PORT --env-manager local' --replicas 2
                external: a URL requests are POSTed to (--runtime external --url http://host:8080/invocations).
                flow: a stored flow run in the server (--runtime flow --flow docs-qa@3; each request's JSON object is its inputs).
                A new deployment gets no live traffic until `loom endpoint traffic` gives it some.
                """)
        @Argument var endpoint: String
        @Option(help: "The deployment's name.") var name: String
        @Option(help: "models:/NAME/VERSION or models:/NAME@ALIAS.") var model: String?
        @Option(help: "native, process, external or flow.") var runtime = "native"
        @Option(help: "flow: a stored flow, NAME or NAME@VERSION (pinned to its version when deployed).") var flow: String?
        @Option(help: "process: the shell command ($PORT is the replica's port).") var command: String?
        @Option(help: "process: copies to run.") var replicas: Int?
        @Option(help: "process: the folder the command runs in.") var directory: String?
        @Option(name: .customLong("env"), help: ArgumentHelp("process: KEY=VALUE for the command's environment.", valueName: "KEY=VALUE")) var environment: [String] = []
        @Option(help: "external: where requests are POSTed.") var url: String?
        @Option(help: "process: the path answering 200 once ready (default /ping).") var healthPath: String?
        @Option(help: "process: the path requests go to (default /invocations).") var invocationPath: String?
        @Option(help: "process: seconds a replica may take to become ready (default 120).") var startupSeconds: Double?
        @Flag(help: "Change an existing deployment instead of adding one.") var update = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var body: [String: Any] = [:]
            if let model { body["model"] = model }
            if let command { body["command"] = command }
            if let replicas { body["replicas"] = replicas }
            if let directory { body["directory"] = URL(fileURLWithPath: directory).standardizedFileURL.path }
            if !environment.isEmpty {
                var env: [String: String] = [:]
                for pair in environment {
                    guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw LoomError.invalidParameter("--env takes KEY=VALUE, not '\(pair)'") }
                    env[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
                }
                body["environment"] = env
            }
            if let url { body["url"] = url }
            if let flow { body["flow"] = flow }
            if let healthPath { body["health_path"] = healthPath }
            if let invocationPath { body["invocation_path"] = invocationPath }
            if let startupSeconds { body["startup_seconds"] = startupSeconds }
            let api = try connection.api()
            let d: [String: Any]
            if update {
                d = try await api.object(.PATCH, EndpointCommand.path(endpoint) + "/deployments/\(ServerAPI.escape(name))", json: body)
            } else {
                body["name"] = name
                body["runtime"] = runtime
                d = try await api.object(.POST, EndpointCommand.path(endpoint) + "/deployments", json: body)
            }
            if output.json { return try printJSON(d) }
            let version = (d["model_version"] as? String).map { " (\($0))" } ?? ""
            print("deployment \(name) of \(endpoint): \(d["runtime"] as? String ?? runtime) \(d["model"] as? String ?? "")\(version), traffic \(d["traffic"] as? Int ?? 0)%")
        }
    }

    struct Undeploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a deployment (it must get no live or mirrored traffic).")
        @Argument var endpoint: String
        @Option(help: "The deployment's name.") var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().call(.DELETE, EndpointCommand.path(endpoint) + "/deployments/\(ServerAPI.escape(name))")
            print("deleted deployment \(name) of \(endpoint)")
        }
    }

    struct Traffic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set live traffic (weights summing to 100) and the mirror.",
            discussion: "loom endpoint traffic churn blue=90 green=10 --mirror shadow=10   (--mirror none stops mirroring)")
        @Argument var endpoint: String
        @Argument(help: ArgumentHelp("NAME=PERCENT for each deployment with live traffic.", valueName: "NAME=PERCENT")) var weights: [String] = []
        @Option(help: ArgumentHelp("NAME=PERCENT (at most 50) to copy requests to, or none.", valueName: "NAME=PERCENT")) var mirror: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        static func parse(_ pairs: [String]) throws -> [String: Int] {
            var out: [String: Int] = [:]
            for pair in pairs {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let n = Int(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "%"))) else {
                    throw LoomError.invalidParameter("weights are NAME=PERCENT, not '\(pair)'")
                }
                out[parts[0]] = n
            }
            return out
        }

        func run() async throws {
            var body: [String: Any] = [:]
            if !weights.isEmpty { body["traffic"] = try Self.parse(weights) }
            if let mirror { body["mirror"] = mirror == "none" ? [String: Int]() : try Self.parse([mirror]) }
            guard !body.isEmpty else { throw LoomError.invalidParameter("give NAME=PERCENT weights, --mirror, or both") }
            let api = try connection.api()
            try EndpointCommand.show(try await api.object(.PUT, EndpointCommand.path(endpoint) + "/traffic", json: body), json: output.json, base: api.base)
        }
    }

    struct Invoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score with an endpoint: a JSON body in an MLflow scoring format, from a file or standard input.")
        @Argument var endpoint: String
        @Option(help: ArgumentHelp("The request body's file, or - for standard input.", valueName: "file")) var data: String = "-"
        @Option(help: "Send it to this deployment, bypassing the traffic split.") var deployment: String?
        @Option(help: "The endpoint's key (key auth). Env: LOOM_ENDPOINT_KEY.") var key: String?
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            let bytes: Data
            if data == "-" {
                bytes = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: data) else { throw LoomError.notFound("no file at \(data)") }
                bytes = d
            }
            var api = try connection.api()
            var headers: [(String, String)] = [("Content-Type", "application/json")]
            if let deployment { headers.append(("loom-deployment", deployment)) }
            if let key = key ?? ProcessInfo.processInfo.environment["LOOM_ENDPOINT_KEY"] { api = ServerAPI(base: api.base, token: key) }
            let (_, answer) = try await api.call(.POST, "/endpoints/\(ServerAPI.escape(endpoint))/invocations", body: ByteBuffer(bytes: bytes), headers: headers)
            print(String(buffer: answer))
        }
    }

    struct Labels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Post ground-truth labels for scored requests, by correlation id.",
            discussion: """
                The file holds JSON Lines ({"correlation_id": "...", "label": 1} per line), a JSON array of
                such objects, or {"labels": [...]}. They are stored next to the endpoint's collected
                requests, where monitoring joins them by correlation id.
                """)
        @Argument var endpoint: String
        @Option(help: ArgumentHelp("The labels' file, or - for standard input.", valueName: "file")) var data: String = "-"
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            let bytes: Data
            if data == "-" {
                bytes = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: data) else { throw LoomError.notFound("no file at \(data)") }
                bytes = d
            }
            let labels = try Self.parse(bytes)
            let answer = try await connection.api().object(.POST, EndpointCommand.path(endpoint) + "/labels", json: ["labels": labels])
            print("posted \(answer["written"] as? Int ?? 0) label\(labels.count == 1 ? "" : "s") to \(answer["path"] as? String ?? "?")")
        }

        static func parse(_ bytes: Data) throws -> [Any] {
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.hasPrefix("[") || text.hasPrefix("{\"labels\""), let whole = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
                if let list = whole as? [Any] { return list }
                if let list = (whole as? [String: Any])?["labels"] as? [Any] { return list }
            }
            var out: [Any] = []
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)), object is [String: Any] else {
                    throw LoomError.invalidParameter("line \(i + 1) is not a JSON object")
                }
                out.append(object)
            }
            return out
        }
    }

    // MARK: Rollouts

    /// Prints a rollout: a summary and its decision log.
    static func showRollout(_ r: [String: Any], json: Bool) throws {
        if json { return try printJSON(r) }
        let stages = (r["stages"] as? [String] ?? []).joined(separator: " → ")
        print("rollout \(r["id"] as? String ?? "?") on \(r["endpoint"] as? String ?? "?"): \(r["baseline"] as? String ?? "?") → \(r["candidate"] as? String ?? "?"), \(r["state"] as? String ?? "?") at stage \((r["stage"] as? Int ?? 0) + 1) of \(stages)")
        if let m = r["message"] as? String { print("  \(m)") }
        for d in r["decisions"] as? [[String: Any]] ?? [] { print(decisionLine(d)) }
    }

    static func decisionLine(_ d: [String: Any]) -> String {
        let time = Output.time((d["time"] as? Int).map(Int64.init)).replacingOccurrences(of: "T", with: " ")
        return "  \(time)  \((d["kind"] as? String ?? "").padding(toLength: 12, withPad: " ", startingAt: 0)) \(d["summary"] as? String ?? "")"
    }

    struct Rollout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Roll a new model out on an endpoint, judged by gates, to its end or back.",
            discussion: """
                loom endpoint rollout churn --to model:churn@challenger --strategy canary --steps 5,25,50,100 --bake 5m \\
                  --gate error_rate:max_increase=0.01 --gate latency_p99:max_ratio=1.5 --gate run:validation_auc:min_delta=0 --wait
                The server drives it: traffic steps (canary), or a mirror then a switch (blue-green), each baked while gates
                compare the new deployment with the current one every --gate-interval; a failed gate restores the previous
                traffic map. --wait follows its decisions and exits 0 when it succeeds, 1 when it rolls back or is aborted.
                A flow rolls out from a flow deployment: --flow NAME[@VERSION] (a stored flow), and --evaluation eval.yaml
                --evaluation-dataset NAME[@VERSION] [--fail-under ...] to gate it on an evaluation before any traffic moves.
                """)
        @Argument var endpoint: String
        @Option(help: "The model: model:NAME@ALIAS, model:NAME/VERSION or models:/... .") var to: String?
        @Option(help: "A stored flow to roll out instead of a model: NAME or NAME@VERSION.") var flow: String?
        @Option(help: "flow rollouts: an evaluation spec (YAML) the new deployment must pass before any traffic moves.") var evaluation: String?
        @Option(help: "flow rollouts: the registered dataset (NAME[@VERSION]) the evaluation runs over.") var evaluationDataset: String?
        @Option(help: "flow rollouts: the evaluation's gates (metric=threshold,...; replaces its fail_under).") var failUnder: String?
        @Option(help: "canary or blue-green.") var strategy = "canary"
        @Option(help: "The new deployment's name (default NAME-vVERSION; an existing one with no traffic is used as it is).") var name: String?
        @Option(help: "canary: live percentages, in order, ending at 100 (default 5,25,50,100).") var steps: String?
        @Option(help: "blue-green: percent of live requests mirrored to the new deployment before the switch.") var mirror: Int?
        @Option(help: "How long each step bakes (90, 30s, 5m, 1h; default 5m).") var bake: String?
        @Option(help: "How often gates are judged (default 30s).") var gateInterval: String?
        @Option(help: "Requests each deployment needs in a window to judge it (default 20).") var minRequests: Int?
        @Option(help: ArgumentHelp("METRIC:BOUND=VALUE[,BOUND=VALUE]; bounds max, min, max_ratio, max_increase, min_delta.", valueName: "gate")) var gate: [String] = []
        @Flag(help: "Follow the rollout until it ends.") var wait = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        static func gate(_ text: String) throws -> [String: Any] {
            guard let colon = text.lastIndex(of: ":") else { throw LoomError.invalidParameter("a gate is METRIC:BOUND=VALUE, not '\(text)'") }
            var g: [String: Any] = ["metric": String(text[..<colon])]
            for part in text[text.index(after: colon)...].split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, let v = Double(kv[1]) else { throw LoomError.invalidParameter("a gate bound is NAME=NUMBER, not '\(part)' in '\(text)'") }
                g[kv[0]] = v
            }
            return g
        }

        func run() async throws {
            var body: [String: Any] = ["strategy": strategy]
            if let to { body["to"] = to }
            if let flow { body["flow"] = flow }
            if let evaluation {
                guard let evaluationDataset else { throw LoomError.invalidParameter("--evaluation needs --evaluation-dataset NAME[@VERSION]") }
                var e: [String: Any] = ["spec": try FlowCommand.read(evaluation), "dataset": evaluationDataset]
                if let failUnder { e["fail_under"] = failUnder }
                body["evaluation"] = e
            } else if evaluationDataset != nil || failUnder != nil {
                throw LoomError.invalidParameter("--evaluation-dataset and --fail-under go with --evaluation FILE")
            }
            if let name { body["deployment"] = name }
            if let steps {
                body["steps"] = try steps.split(separator: ",").map { s -> Int in
                    guard let n = Int(s.trimmingCharacters(in: .whitespaces)) else { throw LoomError.invalidParameter("--steps takes percentages like 5,25,50,100") }
                    return n
                }
            }
            if let mirror { body["mirror"] = mirror }
            if let bake { body["bake"] = bake }
            if let gateInterval { body["gate_interval"] = gateInterval }
            if let minRequests { body["min_requests"] = minRequests }
            if !gate.isEmpty { body["gates"] = try gate.map(Self.gate) }
            let api = try connection.api()
            let r = try await api.object(.POST, EndpointCommand.path(endpoint) + "/rollouts", json: body)
            if !wait { return try showRollout(r, json: output.json) }
            try await EndpointCommand.follow(api, endpoint: endpoint, id: r["id"] as? String ?? "", json: output.json)
        }
    }

    /// Prints a rollout's decisions as they come; exits 1 unless it succeeds.
    static func follow(_ api: ServerAPI, endpoint: String, id: String, json: Bool) async throws {
        var shown = 0
        while true {
            let r = try await api.object(.GET, path(endpoint) + "/rollouts/\(ServerAPI.escape(id))")
            let decisions = r["decisions"] as? [[String: Any]] ?? []
            if !json {
                if shown == 0 { print("rollout \(id) on \(endpoint): \(r["baseline"] as? String ?? "?") → \(r["candidate"] as? String ?? "?")") }
                for d in decisions.dropFirst(shown) { print(decisionLine(d)) }
            }
            shown = decisions.count
            let state = r["state"] as? String ?? "?"
            if state != "running" && state != "paused" {
                if json { try printJSON(r) }
                guard state == "succeeded" else { throw ExitCode(1) }
                return
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    struct Rollouts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An endpoint's latest rollout with its decision log (--all: every rollout).")
        @Argument var endpoint: String
        @Flag(help: "List every rollout instead.") var all = false
        @Flag(help: "Follow the latest rollout until it ends.") var wait = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try connection.api()
            let listing = try await api.object(.GET, EndpointCommand.path(endpoint) + "/rollouts?max_results=\(all ? 1000 : 1)")
            let items = listing["items"] as? [[String: Any]] ?? []
            if all {
                if output.json { return try printJSON(items) }
                return Output.table(["ID", "FROM", "TO", "STRATEGY", "STATE", "STARTED"], items.map { r in
                    [r["id"] as? String ?? "?", r["baseline"] as? String ?? "?", r["candidate"] as? String ?? "?",
                     (r["spec"] as? [String: Any])?["strategy"] as? String ?? "?", r["state"] as? String ?? "?",
                     Output.time((r["creation_time"] as? Int).map(Int64.init))]
                })
            }
            guard let latest = items.first, let id = latest["id"] as? String else { throw LoomError.notFound("Endpoint \(endpoint) has had no rollout") }
            if wait { return try await EndpointCommand.follow(api, endpoint: endpoint, id: id, json: output.json) }
            try showRollout(try await api.object(.GET, EndpointCommand.path(endpoint) + "/rollouts/\(ServerAPI.escape(id))"), json: output.json)
        }
    }

    /// promote, pause, resume, abort.
    static func act(_ action: String, _ endpoint: String, _ connection: ServerOptions, _ output: OutputOptions) async throws {
        let r = try await connection.api().object(.POST, path(endpoint) + "/rollout/\(action)")
        try showRollout(r, json: output.json)
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give the rollout's new deployment all live traffic now.")
        @Argument var endpoint: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions
        func run() async throws { try await act("promote", endpoint, connection, output) }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the rollout stepping (gates are still judged).")
        @Argument var endpoint: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions
        func run() async throws { try await act("pause", endpoint, connection, output) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a paused rollout go on.")
        @Argument var endpoint: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions
        func run() async throws { try await act("resume", endpoint, connection, output) }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the rollout and restore the traffic map it started from.")
        @Argument var endpoint: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions
        func run() async throws { try await act("abort", endpoint, connection, output) }
    }
}
