import ArgumentParser
import Foundation
import LoomCore
import NIOHTTP1

/// `loom gateway`: the LLM gateway's providers, routes, keys and usage (docs/gateway.md), through
/// a running server. Providers and routes are applied with `loom apply -f provider.yaml`.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "The LLM gateway: providers, routes, keys and usage.",
        discussion: """
            Providers (`kind: provider`) and routes (`kind: route`) are applied with `loom apply -f FILE`. Clients call \
            the gateway at /v1 with the OpenAI API (base_url http://HOST:PORT/v1). These commands act through a running \
            server (--server, default http://127.0.0.1:5000). See docs/gateway.md.
            """,
        subcommands: [Providers.self, Routes.self, Keys.self, Usage.self, Delete.self])

    struct Providers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's providers and whether their keys can be read.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let items = try await connection.api().object(.GET, "/api/v1/gateway/providers")["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["NAME", "TYPE", "BASE URL", "KEY", "VERSION"], items.map { p in
                [p["name"] as? String ?? "?", p["type"] as? String ?? "?", p["base_url"] as? String ?? "",
                 p["key_problem"] as? String ?? (p["key_source"] as? String).map { "\($0) (ready)" } ?? "none", "\(p["version"] as? Int ?? 0)"]
            })
        }
    }

    struct Routes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's routes: the model names clients call.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let items = try await connection.api().object(.GET, "/api/v1/gateway/routes")["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            func targets(_ list: Any?, weighted: Bool) -> String {
                (list as? [[String: Any]] ?? []).map { t in
                    "\(t["provider"] as? String ?? "?")/\(t["model"] as? String ?? "?")" + (weighted ? ":\(t["weight"] as? Int ?? 0)" : "")
                }.joined(separator: ", ")
            }
            Output.table(["NAME", "TASK", "TARGETS", "FALLBACKS", "CACHE", "VERSION"], items.map { r in
                [r["name"] as? String ?? "?", r["task"] as? String ?? "?", targets(r["targets"], weighted: true), targets(r["fallbacks"], weighted: false),
                 (r["cache_ttl_seconds"] as? Double).map { "\(Int($0))s" } ?? "off", "\(r["version"] as? Int ?? 0)"]
            })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a provider or policy (not while a route uses it) or a route.")
        @Argument(help: "provider, route or policy") var kind: String
        @Argument var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            guard let parsed = GatewayResource.Kind(rawValue: kind) else { throw LoomError.invalidParameter("kind is provider, route or policy, not \(kind)") }
            _ = try await connection.api().object(.DELETE, "/api/v1/gateway/\(parsed.plural)/" + ServerAPI.escape(name))
            print("\(kind) \(name) deleted")
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Gateway keys: create (the secret is shown once), list, revoke.", subcommands: [Create.self, List.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a gateway key; its secret is printed once.")
            @Argument var name: String
            @Option(name: .customLong("route"), help: "A route it may call (repeat; none: every route of the workspace).") var routes: [String] = []
            @Option(help: "Requests per minute.") var rpm: Int?
            @Option(help: "Tokens per minute.") var tpm: Int?
            @Option(help: "Spend per day (catalog prices).") var spendPerDay: Double?
            @OptionGroup var connection: ServerOptions
            @OptionGroup var output: OutputOptions

            func run() async throws {
                var body: [String: Any] = ["name": name, "routes": routes]
                if let rpm { body["requests_per_minute"] = rpm }
                if let tpm { body["tokens_per_minute"] = tpm }
                if let spendPerDay { body["spend_per_day"] = spendPerDay }
                let k = try await connection.api().object(.POST, "/api/v1/gateway/keys", json: body)
                if output.json { return try EndpointCommand.printJSON(k) }
                print("gateway key \(k["name"] as? String ?? "?") (\(k["id"] as? String ?? "?")) created; its secret, shown only now:")
                print(k["key"] as? String ?? "?")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the workspace's gateway keys.")
            @OptionGroup var connection: ServerOptions
            @OptionGroup var output: OutputOptions

            func run() async throws {
                let items = try await connection.api().object(.GET, "/api/v1/gateway/keys")["items"] as? [[String: Any]] ?? []
                if output.json { return try EndpointCommand.printJSON(items) }
                Output.table(["ID", "NAME", "PREFIX", "ROUTES", "RPM", "TPM", "SPEND/DAY", "STATE"], items.map { k in
                    [k["id"] as? String ?? "?", k["name"] as? String ?? "?", (k["prefix"] as? String ?? "") + "…",
                     (k["routes"] as? [String]).map { $0.isEmpty ? "all" : $0.joined(separator: ",") } ?? "all",
                     (k["requests_per_minute"] as? Int).map(String.init) ?? "-", (k["tokens_per_minute"] as? Int).map(String.init) ?? "-",
                     (k["spend_per_day"] as? Double).map { String($0) } ?? "-", k["revoked_time"] == nil ? "active" : "revoked"]
                })
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a gateway key (by id).")
            @Argument var id: String
            @OptionGroup var connection: ServerOptions

            func run() async throws {
                _ = try await connection.api().object(.DELETE, "/api/v1/gateway/keys/" + ServerAPI.escape(id))
                print("gateway key \(id) revoked")
            }
        }
    }

    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Usage: requests, tokens and cost per day, key, route and model.")
        @Option(help: "First day (YYYY-MM-DD, UTC; default today).") var from: String?
        @Option(help: "Last day (default today).") var to: String?
        @Option(help: "Group by any of day,key,route,provider,model (comma-separated).") var groupBy = "day,route,model"
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var query = ["group_by=" + ServerAPI.escape(groupBy)]
            if let from { query.append("from=" + ServerAPI.escape(from)) }
            if let to { query.append("to=" + ServerAPI.escape(to)) }
            let report = try await connection.api().object(.GET, "/api/v1/gateway/usage?" + query.joined(separator: "&"))
            if output.json { return try EndpointCommand.printJSON(report) }
            let groups = groupBy.split(separator: ",").map(String.init)
            let rows = (report["items"] as? [[String: Any]] ?? []) + [report["totals"] as? [String: Any] ?? [:]]
            Output.table(groups.map { $0.uppercased() } + ["REQUESTS", "ERRORS", "CACHED", "PROMPT", "COMPLETION", "COST"], rows.enumerated().map { i, u in
                groups.map { g in i == rows.count - 1 ? (g == groups[0] ? "total" : "") : (u[g] as? String).map { $0.isEmpty ? "-" : $0 } ?? "-" }
                    + ["requests", "errors", "cached", "prompt_tokens", "completion_tokens"].map { "\(u[$0] as? Int ?? 0)" }
                    + [String(format: "%.6f", u["cost"] as? Double ?? 0)]
            })
        }
    }
}

/// `loom catalog`: the workspace's model catalog (docs/gateway.md).
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "The model catalog: list, sync from providers' listings, set an entry by hand.",
        subcommands: [List.self, Sync.self, Set.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List catalog entries (deprecated ones flagged).")
        @Option(help: "One provider's entries.") var provider: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let path = "/api/v1/catalog" + (provider.map { "?provider=" + ServerAPI.escape($0) } ?? "")
            let items = try await connection.api().object(.GET, path)["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["PROVIDER", "MODEL", "CAPABILITIES", "CONTEXT", "IN $/1M", "OUT $/1M", "STATUS", "SOURCE"], items.map { m in
                [m["provider"] as? String ?? "?", m["model"] as? String ?? "?", (m["capabilities"] as? [String] ?? []).joined(separator: ","),
                 (m["context_length"] as? Int).map(String.init) ?? "-", (m["input_price_per_million"] as? Double).map { String($0) } ?? "-",
                 (m["output_price_per_million"] as? Double).map { String($0) } ?? "-",
                 (m["status"] as? String ?? "?") + (m["deprecated"] as? Bool == true ? " (DEPRECATED)" : ""), m["source"] as? String ?? "?"]
            })
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read providers' model listings into the catalog.")
        @Option(help: "Only this provider.") var provider: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var body: [String: Any] = [:]
            if let provider { body["provider"] = provider }
            let items = try await connection.api().object(.POST, "/api/v1/catalog/sync", json: body)["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            print("\(items.count) catalog entr\(items.count == 1 ? "y" : "ies") added or updated")
            for m in items { print("  \(m["provider"] as? String ?? "?")/\(m["model"] as? String ?? "?"): \(m["status"] as? String ?? "?")") }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or edit a catalog entry by hand: capabilities, context, prices per million tokens, license, status.")
        @Argument var provider: String
        @Argument var model: String
        @Option(help: "Capabilities, comma-separated (chat,embeddings,tools,vision).") var capabilities = "chat"
        @Option(help: "Context length in tokens.") var contextLength: Int?
        @Option(help: "Price per million prompt tokens.") var inputPrice: Double?
        @Option(help: "Price per million completion tokens.") var outputPrice: Double?
        @Option var license: String?
        @Option(help: "available, preview, deprecated or retired.") var status = "available"
        @Option(help: "When the provider retires it (YYYY-MM-DD).") var deprecationDate: String?
        @Option var description: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var body: [String: Any] = ["capabilities": capabilities.split(separator: ",").map(String.init), "status": status]
            if let contextLength { body["context_length"] = contextLength }
            if let inputPrice { body["input_price_per_million"] = inputPrice }
            if let outputPrice { body["output_price_per_million"] = outputPrice }
            if let license { body["license"] = license }
            if let deprecationDate { body["deprecation_date"] = deprecationDate }
            if let description { body["description"] = description }
            let m = try await connection.api().object(.PUT, "/api/v1/catalog/\(ServerAPI.escape(provider))/\(ServerAPI.escape(model))", json: body)
            if output.json { return try EndpointCommand.printJSON(m) }
            print("catalog entry \(provider)/\(model) set")
        }
    }
}
