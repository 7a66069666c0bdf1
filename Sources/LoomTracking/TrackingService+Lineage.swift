import Foundation
import LoomCore
import LoomStore

/// Part of the lineage graph around one node: what it was made from, what was made from it.
public struct LineageGraph: Sendable, Codable {
    public struct Node: Sendable, Codable, Hashable {
        public var id: String
        public var kind: String
        /// Facts worth showing: a dataset's digest and rows, a model version's source and aliases,
        /// a step's state and tracking run.
        public var details: [String: String]
    }

    public var root: String
    public var nodes: [Node]
    public var edges: [LineageEdge]
    /// True when the walk stopped at `limit` nodes.
    public var truncated: Bool
}

extension TrackingService {
    /// The node that text names: `model:NAME/VERSION`, `model:NAME@ALIAS`, `dataset:NAME@VERSION`,
    /// `dataset:NAME@DIGEST` (a `sha256:` digest or at least 8 of its hex digits), or a node id
    /// as stored (`step:RUN/STEP`, `artifact:URI`, `file:PATH`, `deployment:ENDPOINT/NAME`).
    public func lineageNode(_ text: String, workspace: String? = nil) async throws -> String {
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        let kind = LineageNodes.kind(text)
        let rest = String(text.dropFirst(min(text.count, kind.count + 1)))
        switch kind {
        case "model":
            if let at = rest.lastIndex(of: "@") {
                let v = try await modelVersion(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]), workspace: workspace)
                return LineageNodes.model(v.name, v.version)
            }
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw LoomError.invalidParameter("a model is model:NAME/VERSION or model:NAME@ALIAS, not \(text)") }
            let v = try await modelVersion(name: parts[0], version: parts[1], workspace: workspace)
            return LineageNodes.model(v.name, v.version)
        case "dataset":
            guard let at = rest.firstIndex(of: "@") else { throw LoomError.invalidParameter("a dataset is dataset:NAME@VERSION or dataset:NAME@DIGEST, not \(text)") }
            let name = String(rest[..<at])
            let ref = String(rest[rest.index(after: at)...])
            if let number = Int64(ref) {
                let v = try await datasetVersion(name: name, version: number, workspace: workspace)
                return LineageNodes.dataset(v.name, v.version)
            }
            let hex = ref.hasPrefix("sha256:") ? String(ref.dropFirst("sha256:".count)) : ref
            guard hex.count >= 8, hex.allSatisfy(\.isHexDigit) else {
                throw LoomError.invalidParameter("\(ref) is neither a version number nor a digest (sha256:HEX, or at least 8 hex digits)")
            }
            let matches = try await store.datasetVersions(name: name, workspace: workspace).filter { $0.digest.hasPrefix("sha256:" + hex.lowercased()) }
            guard let v = matches.first else { throw LoomError.notFound("Dataset \(name) has no version with digest \(ref)") }
            guard matches.count == 1 else { throw LoomError.invalidParameter("\(ref) matches \(matches.count) versions of \(name): give more digits") }
            return LineageNodes.dataset(v.name, v.version)
        case "step", "artifact", "file", "deployment":
            guard !rest.isEmpty else { throw LoomError.invalidParameter("\(text) names no \(kind)") }
            return text
        default:
            throw LoomError.invalidParameter("a lineage node is model:..., dataset:..., step:..., artifact:..., file:... or deployment:..., not \(text)")
        }
    }

    /// Walks the graph from `node`: upstream (what it was made from), downstream (what was made
    /// from it), or both, up to `depth` edges away and `limit` nodes.
    public func lineage(
        of node: String, directions: [LineageDirection] = LineageDirection.allCases, depth: Int = 50, limit: Int = 500, workspace: String? = nil
    ) async throws -> LineageGraph {
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        var seen: [String] = [node]
        var known: Set<String> = [node]
        var edges: [LineageEdge] = []
        var edgeKeys: Set<String> = []
        var truncated = false
        for direction in directions {
            var frontier = [node]
            var level = 0
            while !frontier.isEmpty, level < depth {
                var next: [String] = []
                for current in frontier {
                    for e in try await store.lineageEdges(of: current, direction: direction, workspace: workspace) {
                        if edgeKeys.insert("\(e.source)\u{0}\(e.target)\u{0}\(e.relation)").inserted { edges.append(e) }
                        let other = direction == .upstream ? e.source : e.target
                        if known.contains(other) { continue }
                        guard known.count < limit else { truncated = true; continue }
                        known.insert(other)
                        seen.append(other)
                        next.append(other)
                    }
                }
                frontier = next
                level += 1
            }
        }
        var nodes: [LineageGraph.Node] = []
        for id in seen { nodes.append(LineageGraph.Node(id: id, kind: LineageNodes.kind(id), details: await details(of: id, workspace: workspace))) }
        return LineageGraph(root: node, nodes: nodes, edges: edges.filter { known.contains($0.source) && known.contains($0.target) }, truncated: truncated)
    }

    func details(of node: String, workspace: String) async -> [String: String] {
        let rest = String(node.dropFirst(LineageNodes.kind(node).count + 1))
        switch LineageNodes.kind(node) {
        case "dataset":
            guard let at = rest.lastIndex(of: "@"), let number = Int64(rest[rest.index(after: at)...]),
                let v = try? await store.datasetVersion(name: String(rest[..<at]), version: number, workspace: workspace) else { return [:] }
            var d = ["digest": v.digest, "source": v.source]
            if let rows = v.rowCount { d["rows"] = String(rows) }
            return d
        case "model":
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let v = try? await modelVersion(name: parts[0], version: parts[1], workspace: workspace) else { return [:] }
            var d = ["source": v.source]
            if !v.aliases.isEmpty { d["aliases"] = v.aliases.sorted().joined(separator: ",") }
            if let run = v.runID { d["run"] = run }
            return d
        case "step":
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let run = try? await store.pipelineRun(id: parts[0]),
                let step = try? await store.stepRuns(pipelineRunID: parts[0]).first(where: { $0.step == parts[1] }) else { return [:] }
            var d = ["pipeline": run.pipeline, "state": step.state.rawValue]
            if let t = step.trackingRunID { d["run"] = t }
            return d
        case "deployment":
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let e = try? await store.endpoint(name: parts[0], workspace: workspace),
                let d = try? await store.deployments(endpoint: parts[0], workspace: workspace).first(where: { $0.name == parts[1] }) else { return [:] }
            return ["runtime": d.runtime.rawValue, "traffic": "\(e.traffic[d.name] ?? 0)%"]
        case "artifact":
            if rest.hasPrefix("runs:/"), let run = rest.dropFirst("runs:/".count).split(separator: "/").first { return ["run": String(run)] }
            return [:]
        default:
            return [:]
        }
    }
}
