import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomSpec

/// Grounding indexes' pages (docs/indexes.md): the workspace's indexes, and one index with its
/// staleness, versions, documents and a query box.
extension UIController {
    func addIndexRoutes(to routes: Routes) {
        routes.get("/indexes") { request, context in try await indexList(request, context) }
        routes.get("/indexes/:name") { request, context in try await indexPage(request, context) }
    }

    static func recall(_ v: IndexVersion) -> String {
        guard let r = (try? JSONValue.parse(Array(v.details.utf8)))?["build"]?["recall_at_10"]?.doubleValue else { return "–" }
        return String(format: "%.3f", r)
    }

    func indexList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            var rows = ""
            for (index, latest) in try await services.gateway.indexes.list(workspace: context.workspace) {
                let spec = try? IndexSpec.parse(yaml: index.specText)
                rows += """
                    <tr><td><a href="/indexes/\(HTML.url(index.name))">\(HTML.escape(index.name))</a></td><td class="num">\(latest.map { String($0.version) } ?? "–")</td>\
                    <td class="num">\(latest.map { String($0.documents) } ?? "–")</td><td class="num">\(latest.map { String($0.chunks) } ?? "–")</td>\
                    <td>\(HTML.escape(spec?.embeddings?.route ?? "– (BM25 only)"))</td><td class="num">\(latest.map(Self.recall) ?? "–")</td>\
                    <td>\(HTML.escape(spec?.schedule?.expression ?? "–"))</td><td>\(HTML.time(latest?.creationTime))</td></tr>
                    """
            }
            let body = """
                <h1>Grounding indexes</h1>
                <p class="muted">Apply a <code>kind: index</code> spec with <code>loom apply -f</code>, build it with <code>loom index build NAME</code> (docs/indexes.md).</p>
                <table class="grid" id="indexes"><thead><tr><th>Name</th><th>Latest</th><th>Documents</th><th>Chunks</th><th>Embeddings</th><th>Recall@10</th><th>Schedule</th><th>Built</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">No indexes yet.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Indexes", active: "indexes", body: body)
        }
    }

    /// An index: staleness, versions, the latest version's documents, and `?q=&mode=` results.
    func indexPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let indexes = services.gateway.indexes
            let (index, spec) = try await indexes.index(workspace: context.workspace, name: name)
            let status = try await indexes.status(workspace: context.workspace, name: name)
            let versions = try await indexes.versions(workspace: context.workspace, name: name)
            var stale = "<p>Up to date with its sources.</p>"
            if !status.changed.isEmpty || !status.removed.isEmpty {
                stale = "<p class=\"error\">Stale: \(status.changed.count) changed, \(status.removed.count) removed; the newest change is \(Int(status.stalenessSeconds)) s old.</p><ul>"
                    + (status.changed.prefix(20).map { "<li>changed <code>\(HTML.escape($0))</code></li>" } + status.removed.prefix(20).map { "<li>removed <code>\(HTML.escape($0))</code></li>" }).joined()
                    + "</ul>"
            } else if indexes.sourcesRoot == nil {
                stale = "<p class=\"muted\">This server reads no sources (LOOM_SOURCES_ROOT): staleness is not known here.</p>"
            }
            var versionRows = ""
            for v in versions {
                let build = (try? JSONValue.parse(Array(v.details.utf8)))?["build"]
                versionRows += """
                    <tr><td class="num">\(v.version)</td><td>\(v.status == .ready ? "ready" : "<span class=\"error\">failed</span>")</td>\
                    <td class="num">\(v.documents)</td><td class="num">\(v.chunks)</td><td class="num">\(Self.recall(v))</td>\
                    <td class="num">\(build?["reused_documents"]?.doubleValue.map { String(Int($0)) } ?? "–")</td>\
                    <td class="num">\(build?["parsed_documents"]?.doubleValue.map { String(Int($0)) } ?? "–")</td>\
                    <td class="num">\(build?["seconds"]?.doubleValue.map { String(format: "%.2f", $0) } ?? "–")</td>\
                    <td>\(HTML.time(v.creationTime))</td><td>\(HTML.escape(v.createdBy))</td><td>\(HTML.escape(v.error ?? ""))</td></tr>
                    """
            }
            let query = request.uri.queryParameters["q"].map(String.init) ?? ""
            let modeText = request.uri.queryParameters["mode"].map(String.init) ?? (spec.embeddings == nil ? "bm25" : "hybrid")
            var results = ""
            if !query.isEmpty {
                guard let mode = RetrievalMode(rawValue: modeText) else { throw LoomError.invalidParameter("mode must be bm25, vector or hybrid") }
                do {
                    let (version, hits) = try await indexes.query(workspace: context.workspace, name: name, text: query, mode: mode, k: 10)
                    results = "<h2>Results from version \(version.version)</h2><ol class=\"hits\">" + hits.map { h in
                        "<li><strong>\(HTML.escape(h.source))</strong>\(h.heading.map { " › " + HTML.escape($0) } ?? "") <span class=\"muted\">score \(String(format: "%.4f", h.score))</span>"
                            + "<pre>\(HTML.escape(String(h.text.prefix(600))))</pre></li>"
                    }.joined() + "</ol>" + (hits.isEmpty ? "<p class=\"muted\">Nothing matched.</p>" : "")
                } catch let e as LoomError {
                    results = "<p class=\"error\">\(HTML.escape(e.message))</p>"
                }
            }
            var documents = ""
            if let latest = status.latest {
                let (_, docs) = try await indexes.version(workspace: context.workspace, name: name, number: latest.version)
                documents = "<h2>Documents of version \(latest.version)</h2><table class=\"grid\" id=\"documents\"><thead><tr><th>Source</th><th>Title</th><th>Chunks</th><th>Digest</th></tr></thead><tbody>"
                    + docs.prefix(500).map { d in
                        "<tr><td>\(HTML.escape(d.source))</td><td>\(HTML.escape(d.title))</td><td class=\"num\">\(d.chunks)</td><td><code>\(HTML.escape(String(d.digest.prefix(19))))</code></td></tr>"
                    }.joined() + "</tbody></table>" + (docs.count > 500 ? "<p class=\"muted\">The first 500 of \(docs.count).</p>" : "")
            }
            let modes = RetrievalMode.allCases.map { m in "<option\(m.rawValue == modeText ? " selected" : "")>\(m.rawValue)</option>" }.joined()
            let body = """
                <h1>Index \(HTML.escape(index.name))</h1>
                <p class="muted">Spec version \(index.version); chunking \(HTML.escape(IndexService.chunkingJSON(spec.chunking).jsonString)); \
                embeddings \(HTML.escape(spec.embeddings?.route ?? "none (BM25 only)"))\(spec.schedule.map { "; schedule <code>\(HTML.escape($0.expression))</code>" } ?? "").</p>
                \(stale)
                <form method="get" action="/indexes/\(HTML.url(index.name))"><input name="q" value="\(HTML.escape(query))" placeholder="Ask the index" size="60">
                <select name="mode">\(modes)</select> <button>Search</button></form>
                \(results)
                <h2>Versions</h2>
                <table class="grid" id="versions"><thead><tr><th>Version</th><th>Status</th><th>Documents</th><th>Chunks</th><th>Recall@10</th><th>Reused</th><th>Parsed</th><th>Build s</th><th>Built</th><th>By</th><th>Error</th></tr></thead>
                <tbody>\(versionRows.isEmpty ? "<tr><td colspan=\"11\" class=\"muted\">Not built yet: <code>loom index build \(HTML.escape(index.name))</code>.</td></tr>" : versionRows)</tbody></table>
                \(documents)
                """
            return HTML.page(title: "Index \(index.name)", active: "indexes", body: body)
        }
    }
}
