import ArgumentParser
import Foundation
import LoomCore
import NIOHTTP1

/// `loom prompt`: the prompt registry (docs/prompts.md), through a running server.
struct PromptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompt",
        abstract: "Prompts: versions with templates and model settings, aliases, diffs, rendering.",
        discussion: """
            Prompts are stored as MLflow stores them: mlflow.genai.register_prompt and load_prompt see the same ones. \
            Templates use {{variables}}. These commands act through a running server (--server). See docs/prompts.md.
            """,
        subcommands: [Create.self, List.self, Show.self, Diff.self, Alias.self, Render.self])

    static func path(_ name: String) -> String { "/api/v1/prompts/" + ServerAPI.escape(name) }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a version (the prompt is made with its first).")
        @Argument var name: String
        @Option(help: "The template text with {{variables}}.") var template: String?
        @Option(help: "A file with the template text, or a JSON list of {role, content} messages (a chat prompt).") var file: String?
        @Option(name: .shortAndLong, help: "The commit message.") var message: String?
        @Option(help: "Model settings as JSON ({\"model_name\": ..., \"temperature\": 0.2, \"max_tokens\": 200}).") var modelConfig: String?
        @Option(help: "Point this alias at the new version.") var alias: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var template: Any
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("no file at \(file)") }
                if file.hasSuffix(".json"), let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] {
                    template = list
                } else {
                    template = text
                }
            } else if let t = self.template {
                template = t
            } else {
                throw LoomError.invalidParameter("give the template: --template TEXT or --file FILE")
            }
            var body: [String: Any] = ["name": name, "template": template]
            if let message { body["commit_message"] = message }
            if let modelConfig {
                guard let object = try? JSONSerialization.jsonObject(with: Data(modelConfig.utf8)) as? [String: Any] else {
                    throw LoomError.invalidParameter("--model-config must be a JSON object")
                }
                body["model_config"] = object
            }
            let api = try connection.api()
            let v = try await api.object(.POST, "/api/v1/prompts", json: body)
            if let alias {
                _ = try await api.object(.PUT, PromptCommand.path(name) + "/aliases/" + ServerAPI.escape(alias), json: ["version": v["version"] as? String ?? ""])
            }
            if output.json { return try EndpointCommand.printJSON(v) }
            print("prompt \(name) version \(v["version"] as? String ?? "?") created (variables: \((v["variables"] as? [String] ?? []).joined(separator: ", ")))"
                + (alias.map { "; \($0) points to it" } ?? ""))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's prompts.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let items = try await connection.api().object(.GET, "/api/v1/prompts")["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["NAME", "LATEST", "ALIASES"], items.map { p in
                [p["name"] as? String ?? "?", p["latest_version"] as? String ?? "-",
                 (p["aliases"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a prompt's versions (newest first) with their templates.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let p = try await connection.api().object(.GET, PromptCommand.path(name))
            if output.json { return try EndpointCommand.printJSON(p) }
            print("prompt \(name): aliases \((p["aliases"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
            for v in p["versions"] as? [[String: Any]] ?? [] {
                print("\nversion \(v["version"] as? String ?? "?") (\(v["type"] as? String ?? "?"))\((v["commit_message"] as? String).map { ": \($0)" } ?? "")")
                if let t = v["template"] as? String { print(t) } else if let m = v["template"] as? [[String: Any]] {
                    for message in m { print("\(message["role"] as? String ?? "?"): \(message["content"] as? String ?? "")") }
                }
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changed between two versions (default: the latest and the one before).")
        @Argument var name: String
        @Option var from: String?
        @Option var to: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var query: [String] = []
            if let from { query.append("from=" + ServerAPI.escape(from)) }
            if let to { query.append("to=" + ServerAPI.escape(to)) }
            let d = try await connection.api().object(.GET, PromptCommand.path(name) + "/diff" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
            if output.json { return try EndpointCommand.printJSON(d) }
            let text = d["template_diff"] as? String ?? ""
            print(text.isEmpty ? "templates are the same" : text, terminator: "")
            for c in d["model_config_changes"] as? [[String: Any]] ?? [] {
                print("model_config.\(c["key"] as? String ?? "?"): \(c["from"].map { "\($0)" } ?? "-") -> \(c["to"].map { "\($0)" } ?? "-")")
            }
        }
    }

    struct Alias: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point an alias (production, staging, ...) at a version, or remove it (--delete).")
        @Argument var name: String
        @Argument var alias: String
        @Argument var version: String?
        @Flag var delete = false
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            let path = PromptCommand.path(name) + "/aliases/" + ServerAPI.escape(alias)
            if delete {
                _ = try await connection.api().object(.DELETE, path)
                return print("alias \(alias) of \(name) removed")
            }
            guard let version else { throw LoomError.invalidParameter("give the version the alias points to (or --delete)") }
            _ = try await connection.api().object(.PUT, path, json: ["version": version])
            print("\(name)@\(alias) -> version \(version)")
        }
    }

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Render NAME, NAME@ALIAS or NAME@VERSION with variables (--var key=value).")
        @Argument var reference: String
        @Option(name: .customLong("var"), help: "A variable's value (repeat).") var variables: [String] = []
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var values: [String: String] = [:]
            for v in variables {
                guard let eq = v.firstIndex(of: "=") else { throw LoomError.invalidParameter("--var takes key=value, not \(v)") }
                values[String(v[..<eq])] = String(v[v.index(after: eq)...])
            }
            let r = try await connection.api().object(.POST, PromptCommand.path(reference) + "/render", json: ["variables": values])
            if output.json { return try EndpointCommand.printJSON(r) }
            if let text = r["text"] as? String { return print(text) }
            for m in r["messages"] as? [[String: String]] ?? [] { print("\(m["role"] ?? "?"): \(m["content"] ?? "")") }
        }
    }
}
