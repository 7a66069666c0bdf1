import ArgumentParser
import Foundation
import LoomCore
import NIOHTTP1

/// `loom index`: grounding indexes (docs/indexes.md), through a running server. Specs are
/// applied with `loom apply -f index.yaml`; the server reads sources under LOOM_SOURCES_ROOT.
struct IndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Grounding indexes: build versions from source folders, query them (bm25, vector, hybrid), follow staleness.",
        discussion: """
            Apply a `kind: index` spec with `loom apply -f index.yaml`. The server reads the spec's sources under its \
            LOOM_SOURCES_ROOT; a build reuses what did not change (by digest) and records an immutable version. \
            See docs/indexes.md.
            """,
        subcommands: [List.self, Show.self, Build.self, Query.self, Documents.self, Delete.self])

    static func path(_ name: String) -> String { "/api/v1/indexes/" + ServerAPI.escape(name) }

    static func describe(_ v: [String: Any]) -> String {
        let details = v["details"] as? [String: Any] ?? [:]
        let build = details["build"] as? [String: Any] ?? [:]
        var parts = ["\(v["documents"] as? Int ?? 0) documents", "\(v["chunks"] as? Int ?? 0) chunks"]
        if let recall = build["recall_at_10"] as? Double { parts.append(String(format: "vector recall@10 %.3f", recall)) }
        if let error = v["error"] as? String { parts = ["failed: \(error)"] }
        return "version \(v["version"] as? Int ?? 0) (\(v["status"] as? String ?? "?")): " + parts.joined(separator: ", ")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's indexes with their latest versions.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let items = try await connection.api().object(.GET, "/api/v1/indexes")["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["NAME", "LATEST", "DOCUMENTS", "CHUNKS", "EMBEDDINGS", "SCHEDULE"], items.map { i in
                let latest = i["latest"] as? [String: Any]
                return [i["name"] as? String ?? "?", latest.map { "\($0["version"] as? Int ?? 0)" } ?? "-", latest.map { "\($0["documents"] as? Int ?? 0)" } ?? "-",
                        latest.map { "\($0["chunks"] as? Int ?? 0)" } ?? "-", i["embedding_route"] as? String ?? "-", i["schedule"] as? String ?? "-"]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an index: its versions, and the source changes not indexed yet (staleness).")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let i = try await connection.api().object(.GET, IndexCommand.path(name))
            if output.json { return try EndpointCommand.printJSON(i) }
            print("index \(name) (spec version \(i["version"] as? Int ?? 0))\((i["schedule"] as? String).map { ", schedule \($0)" } ?? "")")
            let pending = i["pending_changes"] as? [String] ?? []
            let removed = i["removed_sources"] as? [String] ?? []
            if pending.isEmpty && removed.isEmpty {
                print("up to date with its sources")
            } else {
                print(String(format: "stale: %d changed, %d removed; newest change %.0f s ago", pending.count, removed.count, i["staleness_seconds"] as? Double ?? 0))
                for p in pending.prefix(20) { print("  changed \(p)") }
                for r in removed.prefix(20) { print("  removed \(r)") }
            }
            for v in i["versions"] as? [[String: Any]] ?? [] { print(IndexCommand.describe(v)) }
        }
    }

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build a new version from the sources (nothing changed: the latest stays).")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let b = try await connection.api().object(.POST, IndexCommand.path(name) + "/build")
            if output.json { return try EndpointCommand.printJSON(b) }
            let v = b["version"] as? [String: Any] ?? [:]
            if b["changed"] as? Bool == false {
                print("index \(name): no source changed; \(IndexCommand.describe(v)) stays the latest")
            } else {
                print("index \(name) \(IndexCommand.describe(v)); \(b["reused_documents"] as? Int ?? 0) documents reused, \(b["parsed_documents"] as? Int ?? 0) parsed, "
                    + "\(b["embedded_chunks"] as? Int ?? 0) chunks embedded")
            }
            for p in b["problems"] as? [String] ?? [] { print("  skipped: \(p)") }
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find the chunks that best match a question.")
        @Argument var name: String
        @Argument var text: String
        @Option(help: "bm25, vector or hybrid.") var mode = "hybrid"
        @Option(name: .short, help: "How many chunks.") var k = 5
        @Option(help: "Only a version (default: the latest).") var version: Int?
        @Option(help: "vector and hybrid: the HNSW candidate list size for this query (1-10000; default: the index's ef_search).") var efSearch: Int?
        @Option(help: "key=value metadata filters (repeatable; key!=value excludes).") var filter: [String] = []
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var conditions: [String: Any] = [:]
            for f in filter {
                if let r = f.range(of: "!=") {
                    conditions[String(f[..<r.lowerBound])] = ["ne": String(f[r.upperBound...])]
                } else if let eq = f.firstIndex(of: "=") {
                    conditions[String(f[..<eq])] = String(f[f.index(after: eq)...])
                } else {
                    throw LoomError.invalidParameter("--filter takes key=value or key!=value, not '\(f)'")
                }
            }
            var body: [String: Any] = ["query": text, "mode": mode, "k": k]
            if !conditions.isEmpty { body["filter"] = conditions }
            if let version { body["version"] = version }
            if let efSearch { body["ef_search"] = efSearch }
            let r = try await connection.api().object(.POST, IndexCommand.path(name) + "/query", json: body)
            if output.json { return try EndpointCommand.printJSON(r) }
            for (i, h) in (r["hits"] as? [[String: Any]] ?? []).enumerated() {
                let heading = (h["heading"] as? String).map { " > \($0)" } ?? ""
                print(String(format: "%d. %@%@ (score %.4f)", i + 1, h["source"] as? String ?? "?", heading, h["score"] as? Double ?? 0))
                let snippet = (h["text"] as? String ?? "").replacingOccurrences(of: "\n", with: " ")
                print("   " + (snippet.count > 200 ? String(snippet.prefix(200)) + "…" : snippet))
            }
        }
    }

    struct Documents: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the documents a version holds (its lineage to the sources).")
        @Argument var name: String
        @Argument var version: Int
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let r = try await connection.api().object(.GET, IndexCommand.path(name) + "/versions/\(version)")
            if output.json { return try EndpointCommand.printJSON(r) }
            Output.table(["SOURCE", "TITLE", "CHUNKS", "DIGEST"], (r["documents"] as? [[String: Any]] ?? []).map { d in
                [d["source"] as? String ?? "?", d["title"] as? String ?? "", "\(d["chunks"] as? Int ?? 0)", String((d["digest"] as? String ?? "").prefix(19))]
            })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an index with every version.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().object(.DELETE, IndexCommand.path(name))
            print("index \(name) deleted")
        }
    }
}
