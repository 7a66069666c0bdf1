import Foundation
import Hummingbird
import LoomCore
import LoomData
import LoomStore
import LoomTracking

extension UIController {
    func datasetList(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            try await auth.requireRole(context, .viewer)
            let list = try await services.store.listDatasets(workspace: context.workspace)
            var rows = ""
            for d in list {
                let v = d.latest
                rows += """
                    <tr><td><a href="/datasets/\(HTML.url(d.name))">\(HTML.escape(d.name))</a></td><td class="num">\(d.versions)</td>\
                    <td>v\(v.version)</td><td>\(HTML.escape(v.format))</td><td class="num">\(v.rowCount.map(String.init) ?? "–")</td>\
                    <td class="muted">\(HTML.escape(String(v.digest.prefix(19))))</td><td>\(HTML.time(v.creationTime))</td>\
                    <td>\(HTML.escape(v.description ?? ""))</td></tr>
                    """
            }
            let body = """
                <h1>Datasets</h1>
                <table class="grid" id="datasets"><thead><tr><th>Name</th><th>Versions</th><th>Latest</th><th>Format</th><th>Rows</th><th>Digest</th><th>Registered</th><th>Description</th></tr></thead>
                <tbody>\(rows.isEmpty ? "<tr><td colspan=\"8\" class=\"muted\">Nothing registered yet: <code>loom datasets register FILE --name NAME</code>.</td></tr>" : rows)</tbody></table>
                """
            return HTML.page(title: "Datasets", active: "datasets", body: body)
        }
    }

    /// A dataset's versions and the profile of one of them (`?version=N`, the newest by default).
    func datasetPage(_ request: Request, _ context: Context) async throws -> Response {
        try await guarded {
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let versions = try await services.store.datasetVersions(name: name, workspace: context.workspace)
            guard let newest = versions.first else { throw LoomError.notFound("No dataset named \(name)") }
            let chosen: DatasetVersion
            if let raw = request.query["version"] {
                guard let n = Int64(raw), let v = versions.first(where: { $0.version == n }) else {
                    throw LoomError.notFound("Dataset \(name) has no version \(raw)")
                }
                chosen = v
            } else {
                chosen = newest
            }
            var rows = ""
            for v in versions {
                let mark = v.version == chosen.version ? " class=\"selected\"" : ""
                rows += """
                    <tr\(mark)><td><a href="/datasets/\(HTML.url(name))?version=\(v.version)">v\(v.version)</a></td><td>\(HTML.escape(v.format))</td>\
                    <td class="num">\(v.rowCount.map(String.init) ?? "–")</td><td class="num">\(v.sizeBytes.map(String.init) ?? "–")</td>\
                    <td class="muted">\(HTML.escape(String(v.digest.prefix(23))))</td><td>\(HTML.escape(v.sourceType)) \(HTML.escape(v.source))</td>\
                    <td>\(HTML.time(v.creationTime))</td><td>\(HTML.escape(v.createdBy))</td></tr>
                    """
            }
            let body = """
                <p class="crumbs"><a href="/datasets">Datasets</a> /</p>
                <h1 id="dataset-name">\(HTML.escape(name))</h1>
                <table class="grid" id="dataset-versions"><thead><tr><th>Version</th><th>Format</th><th>Rows</th><th>Bytes</th><th>Digest</th><th>Source</th><th>Registered</th><th>By</th></tr></thead>
                <tbody>\(rows)</tbody></table>
                <section><h2 id="profile-title">Profile of v\(chosen.version)</h2>
                <p>\(HTML.escape(chosen.description ?? ""))</p>\(Self.lineageHTML(chosen))
                <p><a href="/lineage?node=\(HTML.url("dataset:\(name)@\(chosen.version)"))">Lineage graph</a></p>
                \(Self.profileHTML(chosen))</section>
                """
            return HTML.page(title: name, active: "datasets", body: body)
        }
    }

    static func lineageHTML(_ v: DatasetVersion) -> String {
        guard let json = v.lineage, let l = try? JSONDecoder().decode(DatasetLineage.self, from: Data(json.utf8)) else { return "" }
        let inputs = l.inputs.map { i -> String in
            if let name = i.name, let version = i.version {
                return "<a href=\"/datasets/\(HTML.url(name))?version=\(version)\">\(HTML.escape(name)) v\(version)</a>"
            }
            return HTML.escape(i.path ?? "?")
        }.joined(separator: ", ")
        let part = l.part.map { " (\(HTML.escape($0)))" } ?? ""
        return "<p id=\"lineage\">Made by <span class=\"tag\">\(HTML.escape(l.operation))</span>\(part) of \(inputs)</p>"
    }

    static func profileHTML(_ v: DatasetVersion) -> String {
        guard v.format != "mlflow", let json = v.profile,
            let p = try? JSONDecoder().decode(DatasetProfile.self, from: Data(json.utf8)) else {
            return "<p class=\"muted\">Logged by an MLflow run: Loom has not read this data. \(v.profile.map { "MLflow's profile: <code>\(HTML.escape($0))</code>" } ?? "")</p>"
        }
        var findings = ""
        if !p.findings.isEmpty {
            findings = "<ul id=\"findings\">" + p.findings.map { "<li><span class=\"tag\">\(HTML.escape($0.kind.rawValue))</span> \(HTML.escape($0.message))</li>" }.joined() + "</ul>"
        }
        var rows = ""
        for c in p.columns {
            let total = c.count + c.nulls
            let present = total == 0 ? 0 : Double(c.count) / Double(total)
            let bar = "<svg width=\"60\" height=\"10\" role=\"img\" aria-label=\"\(Int((present * 100).rounded()))% present\"><rect width=\"60\" height=\"10\" fill=\"#fee2e2\"/><rect width=\"\(Int((present * 60).rounded()))\" height=\"10\" fill=\"#6366f1\"/></svg>"
            func n(_ v: Double?) -> String { v.map(HTML.number) ?? "–" }
            let quantiles = (c.quantiles ?? []).map { "p\(Int(($0.q * 100).rounded())) \(HTML.number($0.value))" }.joined(separator: " · ")
            let top = (c.top ?? []).prefix(5).map { "<span class=\"tag\">\(HTML.escape(String($0.value.prefix(30)))) (\($0.count))</span>" }.joined(separator: " ")
            rows += """
                <tr><td>\(HTML.escape(c.name))</td><td>\(c.type.rawValue)</td><td>\(bar) <span class="muted">\(c.nulls) missing</span></td>\
                <td class="num">\(c.distinctApproximate ? "≈" : "")\(c.distinct)</td><td class="num">\(n(c.min))</td><td class="num">\(n(c.mean))</td>\
                <td class="num">\(n(c.std))</td><td class="num">\(n(c.max))</td><td class="muted">\(quantiles)</td><td>\(top)</td></tr>
                """
        }
        return """
            <p>\(p.rows) rows · \(p.columns.count) columns</p>\(findings)
            <table class="grid" id="profile"><thead><tr><th>Column</th><th>Type</th><th>Present</th><th>Distinct</th><th>Min</th><th>Mean</th><th>Std</th><th>Max</th><th>Quantiles</th><th>Top values</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
    }
}
