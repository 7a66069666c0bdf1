import ArgumentParser
import Foundation
import LoomCore
import LoomGenAI
import NIOHTTP1

/// `loom flow`: flows of prompt, llm, retrieve, tool, branch and map nodes (docs/flows.md).
struct FlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow",
        abstract: "Flows: check a flow spec, and run it once on a server (its LLM calls through the gateway, a trace per run).",
        subcommands: [Validate.self, Run.self])

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
            discussion: "Inputs: --input name=value (a JSON value, else text), or --inputs FILE.json. Variants: --variant node=variant.")
        @Option(name: .shortAndLong, help: "The flow (YAML).") var file: String
        @Option(name: .customLong("input"), help: "name=value (repeatable).") var input: [String] = []
        @Option(name: .customLong("inputs"), help: "A JSON file with the inputs object.") var inputsFile: String?
        @Option(name: .customLong("variant"), help: "node=variant (repeatable).") var variant: [String] = []
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let text = try FlowCommand.read(file)
            _ = try FlowSpec.parse(yaml: text, file: file)
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
            let r = try await connection.api().object(.POST, "/api/v1/flows/run", json: ["spec": text, "inputs": inputs, "variants": variants])
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
}
