import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func addLineageEdges(_ edges: [LineageEdge]) async throws {
        guard !edges.isEmpty else { return }
        _ = try await write("add_lineage", "lineage", edges[0].target, detail: "\(edges.count) edges") { db in
            for e in edges {
                try await db.raw("""
                    INSERT INTO lineage_edges (workspace, source, target, relation, creation_time)
                    VALUES (\(bind: e.workspace), \(bind: e.source), \(bind: e.target), \(bind: e.relation), \(bind: e.creationTime))
                    ON CONFLICT (workspace, source, target, relation) DO NOTHING
                    """).run()
            }
            return true
        }
    }

    public func lineageEdges(of node: String, direction: LineageDirection, workspace: String) async throws -> [LineageEdge] {
        try await read { db in
            let column: SQLQueryString = direction == .upstream ? "target" : "source"
            return try await db.raw("""
                SELECT * FROM lineage_edges WHERE workspace = \(bind: workspace) AND \(column) = \(bind: node)
                ORDER BY creation_time, source, target, relation
                """).all().map { row in
                LineageEdge(
                    workspace: try row.string("workspace"), source: try row.string("source"), target: try row.string("target"),
                    relation: try row.string("relation"), creationTime: try row.int64("creation_time"))
            }
        }
    }
}
