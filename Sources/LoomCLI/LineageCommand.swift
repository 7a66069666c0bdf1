import ArgumentParser
import Foundation
import LoomCore
import LoomStore
import LoomTracking

/// `loom lineage NODE`: what a model, dataset or step was made from, and what was made from it.
struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Print the lineage of a model version, dataset version or pipeline step, both ways.",
        discussion: """
            NODE is model:NAME/VERSION, model:NAME@ALIAS, dataset:NAME@VERSION, dataset:NAME@DIGEST (sha256:HEX or at \
            least 8 hex digits), or a node as printed (step:RUN/STEP, artifact:URI, file:PATH). See docs/lineage.md.
            """)

    @Argument(help: "The node.") var node: String
    @Flag(name: .customLong("up"), help: "Only what it was made from.") var upOnly = false
    @Flag(name: .customLong("down"), help: "Only what was made from it.") var downOnly = false
    @Option(help: "Edges to follow at most, each way.") var depth = 50
    @OptionGroup var output: OutputOptions
    @OptionGroup var storage: StoreOptions

    func run() async throws {
        guard depth >= 1 else { throw LoomError.invalidParameter("--depth must be at least 1") }
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let id = try await tracking.lineageNode(node)
        var directions = LineageDirection.allCases
        if upOnly != downOnly { directions = upOnly ? [.upstream] : [.downstream] }
        let graph = try await tracking.lineage(of: id, directions: directions, depth: depth)
        if output.json { return try Output.json(graph) }
        print(Self.render(graph, directions: directions), terminator: "")
    }

    static func render(_ graph: LineageGraph, directions: [LineageDirection]) -> String {
        let nodes = Dictionary(graph.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func label(_ id: String) -> String {
            let d = nodes[id]?.details ?? [:]
            let shown = ["pipeline", "state", "aliases", "rows", "digest", "run"].compactMap { k in
                d[k].map { k == "digest" ? "\(k) \($0.prefix(19))…" : "\(k) \($0)" }
            }
            return shown.isEmpty ? id : "\(id)  (\(shown.joined(separator: ", ")))"
        }
        var out = label(graph.root) + "\n"
        for direction in directions {
            out += direction == .upstream ? "made from:\n" : "used by:\n"
            var printed: Set<String> = []
            func walk(_ id: String, _ indent: String) {
                let next = graph.edges.filter { direction == .upstream ? $0.target == id : $0.source == id }
                for (i, e) in next.enumerated() {
                    let other = direction == .upstream ? e.source : e.target
                    let last = i == next.count - 1
                    let again = printed.contains(other)
                    out += "\(indent)\(last ? "└─" : "├─") \(e.relation) \(direction == .upstream ? "←" : "→") \(label(other))\(again ? "  (shown above)" : "")\n"
                    if again { continue }
                    printed.insert(other)
                    walk(other, indent + (last ? "   " : "│  "))
                }
            }
            printed.insert(graph.root)
            walk(graph.root, "  ")
            if !graph.edges.contains(where: { direction == .upstream ? $0.target == graph.root : $0.source == graph.root }) { out += "  (nothing recorded)\n" }
        }
        if graph.truncated { out += "(stopped at \(graph.nodes.count) nodes)\n" }
        return out
    }
}
