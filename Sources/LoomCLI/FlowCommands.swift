import ArgumentParser
import Foundation
import LoomCore
import LoomGenAI
import NIOHTTP1

/// `loom flow`: flows of prompt, llm, retrieve, tool, branch and map nodes (docs/flows.md).
struct FlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow",
        abstract: "Flows: check a flow spec, run it once on a server (its LLM calls through the gateway, a trace per run); list, show and delete stored flows (loom apply stores one).",
        subcommands: [Validate.self, Run.self, List.self, Show.self, Delete.self, Serve.self])

    static func read(_ file: String) throws -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("no file at \(file)") }
        return text
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a flow spec whole (every problem with its line and field); exits 1 when it has problems.")
        @Option(name: .shortAndLong, help: "The flow (YAML).") var file: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let spec = try FlowSpec.parse(yaml: try FlowCommand.read(file), file: file)
            if output.json {
                struct Checked: Encodable {
                    let flow: String
                    let nodes: [String]
                }
                return try Output.json(Checked(flow: spec.name, nodes: spec.runOrder.map(\.name)))
            }
            print("flow \(spec.name): \(spec.nodes.count) nodes, inputs \(spec.inputs.map { "\($0.name): \($0.type.rawValue)" }.joined(separator: ", "))")
            for n in spec.runOrder {
                print("  \(n.name) (\(n.kind.rawValue))" + (n.needs.isEmpty ? "" : " after \(n.needs.joined(separator: ", "))")
                    + (n.variants.isEmpty ? "" : "; variants \(n.variants.keys.sorted().joined(separator: ", "))"))
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a flow once on a server; prints its outputs (exits 1 when a node failed).",
            discussion: "The flow: -f FILE, or --flow NAME[@VERSION] of a stored flow. Inputs: --input name=value (a JSON value, else text), or --inputs FILE.json. Variants: --variant node=variant.")
        @Option(name: .shortAndLong, help: "The flow (YAML).") var file: String?
        @Option(help: "A stored flow: NAME or NAME@VERSION.") var flow: String?
        @Option(name: .customLong("input"), help: "name=value (repeatable).") var input: [String] = []
        @Option(name: .customLong("inputs"), help: "A JSON file with the inputs object.") var inputsFile: String?
        @Option(name: .customLong("variant"), help: "node=variant (repeatable).") var variant: [String] = []
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var body: [String: Any] = [:]
            switch (file, flow) {
            case (let file?, nil):
                let text = try FlowCommand.read(file)
                _ = try FlowSpec.parse(yaml: text, file: file)
                body["spec"] = text
            case (nil, let flow?):
                body["flow"] = flow
            default:
                throw LoomError.invalidParameter("give the flow as -f FILE or as --flow NAME[@VERSION] (one of them)")
            }
            var inputs: [String: Any] = [:]
            if let inputsFile {
                guard let data = FileManager.default.contents(atPath: inputsFile), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    throw LoomError.invalidParameter("--inputs must name a JSON file holding an object")
                }
                inputs = object
            }
            for item in input {
                guard let eq = item.firstIndex(of: "=") else { throw LoomError.invalidParameter("--input takes name=value, not '\(item)'") }
                let raw = String(item[item.index(after: eq)...])
                inputs[String(item[..<eq])] = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)) ?? raw
            }
            var variants: [String: String] = [:]
            for item in variant {
                guard let eq = item.firstIndex(of: "=") else { throw LoomError.invalidParameter("--variant takes node=variant, not '\(item)'") }
                variants[String(item[..<eq])] = String(item[item.index(after: eq)...])
            }
            body["inputs"] = inputs
            body["variants"] = variants
            let r = try await connection.api().object(.POST, "/api/v1/flows/run", json: body)
            let failed = r["status"] as? String != "succeeded"
            if output.json {
                try EndpointCommand.printJSON(r)
            } else {
                for n in r["nodes"] as? [[String: Any]] ?? [] {
                    let ms = n["duration_ms"] as? Double ?? 0
                    print(String(format: "  %@ %@ (%@) %.1f ms", n["status"] as? String ?? "?", n["name"] as? String ?? "?", n["kind"] as? String ?? "?", ms)
                        + ((n["error"] as? String).map { ": \($0)" } ?? ""))
                }
                if let outputs = r["outputs"] as? [String: Any] {
                    for (k, v) in outputs.sorted(by: { $0.key < $1.key }) { print("\(k): \(v is String ? v as! String : Self.json(v))") }
                }
                print("trace \(r["trace_id"] as? String ?? "?")" + ((r["error"] as? String).map { "; failed: \($0)" } ?? ""))
            }
            if failed { throw ExitCode(1) }
        }

        static func json(_ v: Any) -> String {
            guard JSONSerialization.isValidJSONObject(v), let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes]) else {
                return "\(v)"
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the stored flows (the newest version of each).")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let r = try await connection.api().object(.GET, "/api/v1/flows")
            if output.json { return try EndpointCommand.printJSON(r) }
            Output.table(["NAME", "VERSION", "NODES", "INPUTS", "UPDATED"], (r["items"] as? [[String: Any]] ?? []).map { f in
                [f["name"] as? String ?? "", "\(f["version"] as? Int ?? 0)", "\((f["nodes"] as? [Any])?.count ?? 0)",
                 ((f["inputs"] as? [String: Any])?.keys.sorted() ?? []).joined(separator: ","), Output.time((f["creation_time"] as? NSNumber)?.int64Value)]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a stored flow: its nodes in the order they run, its versions, and (with --spec) its YAML.")
        @Argument(help: "NAME or NAME@VERSION.") var flow: String
        @Flag(help: "Print the flow's YAML.") var spec = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let parts = flow.split(separator: "@", maxSplits: 1).map(String.init)
            let path = "/api/v1/flows/\(ServerAPI.escape(parts[0]))" + (parts.count == 2 ? "/versions/\(ServerAPI.escape(parts[1]))" : "")
            let r = try await connection.api().object(.GET, path)
            if output.json { return try EndpointCommand.printJSON(r) }
            if spec { return print(r["spec"] as? String ?? "", terminator: "") }
            print("flow \(r["name"] as? String ?? "?") version \(r["version"] as? Int ?? 0)" + ((r["description"] as? String).map { ": \($0)" } ?? ""))
            for n in r["nodes"] as? [[String: Any]] ?? [] {
                let needs = n["needs"] as? [String] ?? []
                let variants = n["variants"] as? [String] ?? []
                print("  \(n["name"] as? String ?? "?") (\(n["kind"] as? String ?? "?"))" + (needs.isEmpty ? "" : " after \(needs.joined(separator: ", "))")
                    + (variants.isEmpty ? "" : "; variants \(variants.joined(separator: ", "))"))
            }
            if let versions = r["versions"] as? [[String: Any]] {
                print("versions: " + versions.map { "\($0["version"] as? Int ?? 0) (\($0["created_by"] as? String ?? "?"))" }.joined(separator: ", "))
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a stored flow with all its versions.")
        @Argument(help: "The flow's name.") var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().call(.DELETE, "/api/v1/flows/\(ServerAPI.escape(name))")
            print("deleted flow \(name)")
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a stored flow from an endpoint: creates the endpoint if needed, deploys the flow (pinned to its version) and gives it traffic.",
            discussion: """
                The endpoint answers POST /endpoints/ENDPOINT/invocations with the flow's outputs and the run's trace id; the request's \
                JSON object is the flow's inputs (or {"inputs": {...}, "variants": {...}}). Its traffic split, mirroring, rollouts and \
                request collection are the endpoint's (docs/deployment.md): serve a second version under another --deployment name \
                with --traffic 10 for a canary.
                """)
        @Argument(help: "NAME or NAME@VERSION of a stored flow.") var flow: String
        @Option(help: "The endpoint (created when missing).") var endpoint: String
        @Option(help: "The deployment's name (default: the flow's name and version, e.g. docs-qa-v3).") var deployment: String?
        @Option(help: "The live traffic percentage it gets (the others share the rest as before; 100 sends it all).") var traffic = 100
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard (0...100).contains(traffic) else { throw LoomError.invalidParameter("--traffic is a percentage from 0 to 100") }
            let api = try connection.api()
            let path = EndpointCommand.path(endpoint)
            let name = flow.split(separator: "@").first.map(String.init) ?? flow
            let pinned = try await api.object(.GET, "/api/v1/flows/\(ServerAPI.escape(name))" + (flow.contains("@") ? "/versions/\(ServerAPI.escape(String(flow.split(separator: "@")[1])))" : ""))
            let version = pinned["version"] as? Int ?? 0
            let deployment = deployment ?? "\(name)-v\(version)"
            var current: [String: Any]
            var created = false
            do {
                current = try await api.object(.GET, path)
            } catch let e as LoomError where e.code == .notFound {
                current = try await api.object(.POST, "/api/v1/endpoints", json: ["name": endpoint, "description": "serves flow \(name)"])
                created = true
            }
            do {
                _ = try await api.object(.POST, path + "/deployments", json: ["name": deployment, "runtime": "flow", "flow": "\(name)@\(version)"])
            } catch {
                // A refused deployment leaves nothing behind: not the endpoint made for it either.
                if created { _ = try? await api.call(.DELETE, path) }
                throw error
            }
            // The new deployment gets --traffic; the others keep their shares, scaled to the rest.
            let before = (current["traffic"] as? [String: Int] ?? [:]).filter { $0.key != deployment && $0.value > 0 }
            let rest = 100 - traffic
            var weights: [String: Int] = [deployment: traffic]
            let total = before.values.reduce(0, +)
            if total > 0, rest > 0 {
                var given = 0
                for (i, (k, v)) in before.sorted(by: { $0.key < $1.key }).enumerated() {
                    let share = i == before.count - 1 ? rest - given : v * rest / total
                    weights[k] = share
                    given += share
                }
            } else if rest > 0 {
                weights[deployment] = 100
            }
            let shown = try await api.object(.PUT, path + "/traffic", json: ["traffic": weights])
            if output.json { return try EndpointCommand.printJSON(shown) }
            print("flow \(name)@\(version) served by \(endpoint)/\(deployment) with \(weights[deployment] ?? 0)% of its traffic: POST \(api.base)/endpoints/\(endpoint)/invocations")
        }
    }
}
