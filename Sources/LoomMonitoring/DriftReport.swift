import Foundation
import LoomCore

/// A column's distribution on both sides, for plots: shares of equal-width bins (numerical) or
/// of the most frequent categories.
public struct ColumnDistribution: Sendable, Codable, Equatable {
    public var name: String
    public var labels: [String]
    public var reference: [Double]
    public var current: [Double]

    /// Bins for numerical plots; categories shown before the rest are grouped as "other".
    static let bins = 20
    static let categories = 15

    static func of(_ name: String, _ kind: ColumnKind, _ reference: Sample, _ current: Sample, _ levels: [String]) -> ColumnDistribution {
        switch (reference, current) {
        case (.numbers(let a, _), .numbers(let b, _)) where kind == .numerical:
            let lo = Swift.min(a.first!, b.first!), hi = Swift.max(a.last!, b.last!)
            let edges = Histogram.linspace(lo == hi ? lo - 0.5 : lo, lo == hi ? hi + 0.5 : hi, bins + 1)
            let ra = Histogram.counts(a, edges: edges), cb = Histogram.counts(b, edges: edges)
            return ColumnDistribution(
                name: name, labels: (0..<bins).map { Self.number(edges[$0]) },
                reference: ra.map { Double($0) / Double(a.count) }, current: cb.map { Double($0) / Double(b.count) })
        case (.numbers(let a, _), .numbers(let b, _)):
            let m = MergedCounts(a, b)
            return top(name, m.keys.map(Self.number), m.reference, m.current)
        case (.counts(let a), .counts(let b)):
            return top(name, levels, a, b)
        default:
            return ColumnDistribution(name: name, labels: [], reference: [], current: [])
        }
    }

    /// The most frequent categories (over both sides), the rest as "other".
    static func top(_ name: String, _ labels: [String], _ a: [Int], _ b: [Int]) -> ColumnDistribution {
        let na = Double(Swift.max(a.reduce(0, +), 1)), nb = Double(Swift.max(b.reduce(0, +), 1))
        let order = labels.indices.filter { a[$0] + b[$0] > 0 }.sorted { Double(a[$0]) / na + Double(b[$0]) / nb > Double(a[$1]) / na + Double(b[$1]) / nb }
        let shown = Array(order.prefix(categories))
        var d = ColumnDistribution(
            name: name, labels: shown.map { labels[$0] }, reference: shown.map { Double(a[$0]) / na }, current: shown.map { Double(b[$0]) / nb })
        if order.count > shown.count {
            d.labels.append("other")
            d.reference.append(1 - d.reference.reduce(0, +))
            d.current.append(1 - d.current.reduce(0, +))
        }
        return d
    }

    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e12 { return String(Int64(x)) }
        return String(format: "%.4g", x)
    }
}

/// Drift results as JSON, a text table and a self-contained HTML page.
public enum DriftReport {
    /// The JSON document `loom drift --json` writes (docs/monitoring.md).
    public static func json(_ result: DriftResult, quality: DataQuality.Result? = nil, reference: String, current: String) throws -> Data {
        struct Document: Encodable {
            let reference: String
            let current: String
            let result: DriftResult
            let quality: DataQuality.Result?
            enum CodingKeys: String, CodingKey { case reference, current, quality = "data_quality" }
            func encode(to encoder: any Encoder) throws {
                try result.encode(to: encoder)
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(reference, forKey: .reference)
                try c.encode(current, forKey: .current)
                try c.encodeIfPresent(quality, forKey: .quality)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Document(reference: reference, current: current, result: result, quality: quality))
    }

    /// The data quality line under the drift summary.
    public static func summary(_ q: DataQuality.Result) -> String {
        let failing = q.columns.filter { !$0.passed }
        guard !failing.isEmpty else { return "data quality: all \(q.columns.count) columns pass" }
        return "data quality: \(failing.count) of \(q.columns.count) columns fail (" + failing.prefix(5).map { c in
            "\(c.name): " + c.violations.map { v in
                let rate = v == "null_rate" ? c.nullRate : v == "type_error_rate" ? c.typeErrorRate : c.outOfRangeRate
                return "\(v.replacingOccurrences(of: "_", with: " ")) \(String(format: "%.2f%%", rate * 100))"
            }.joined(separator: ", ")
        }.joined(separator: "; ") + (failing.count > 5 ? "; ..." : "") + ")"
    }

    /// A score as printed: p-values and distances with four significant digits.
    public static func score(_ s: Double?) -> String {
        guard let s else { return "-" }
        if s == 0 { return "0" }
        return abs(s) < 1e-4 ? String(format: "%.3e", s) : String(format: "%.4f", s)
    }

    /// The sentence under the table.
    public static func summary(_ r: DriftResult) -> String {
        let verdict = r.datasetDrifted ? "dataset drift" : "no dataset drift"
        return "\(r.numberOfDriftedColumns) of \(r.numberOfColumns) columns drifted (share \(String(format: "%.2f", r.shareDrifted)), threshold \(String(format: "%.2f", r.driftShare))): \(verdict)"
    }

    /// A page that opens in any browser without a network: the summary, the table, the data
    /// findings, and per column the reference and current distributions side by side.
    public static func html(_ r: DriftResult, quality: DataQuality.Result? = nil, reference: String, current: String, title: String = "Data drift") -> String {
        var out = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>\(style)</style></head><body>
            <h1>\(escape(title))</h1>
            <p class="files">reference <code>\(escape(reference))</code> (\(r.referenceRows) rows) · current <code>\(escape(current))</code> (\(r.currentRows) rows)</p>
            <p class="verdict \(r.datasetDrifted ? "bad" : "good")">\(escape(summary(r)))</p>
            <table><thead><tr><th>column</th><th>type</th><th>method</th><th>score</th><th>threshold</th><th>drift</th></tr></thead><tbody>

            """
        for c in r.columns {
            out += "<tr class=\"\(c.drifted ? "bad" : "")\"><td><a href=\"#col-\(anchor(c.name))\">\(escape(c.name))</a></td><td>\(c.type.rawValue)</td>"
            out += "<td>\(escape(c.methodName))</td><td class=\"num\">\(score(c.score))</td><td class=\"num\">\(score(c.threshold))</td>"
            out += "<td>\(c.drifted ? "drifted" : "no")</td></tr>\n"
        }
        out += "</tbody></table>\n"
        if let quality {
            out += "<h2>Data quality</h2><p>\(escape(summary(quality)))</p>\n"
            out += "<table><thead><tr><th>column</th><th>null rate</th><th>type error rate</th><th>out of range rate</th><th>passed</th></tr></thead><tbody>\n"
            for c in quality.columns {
                out += "<tr class=\"\(c.passed ? "" : "bad")\"><td>\(escape(c.name))</td><td class=\"num\">\(String(format: "%.2f%%", c.nullRate * 100))</td>"
                out += "<td class=\"num\">\(String(format: "%.2f%%", c.typeErrorRate * 100))</td><td class=\"num\">\(String(format: "%.2f%%", c.outOfRangeRate * 100))</td>"
                out += "<td>\(c.passed ? "yes" : "no")</td></tr>\n"
            }
            out += "</tbody></table>\n"
        }
        if !r.findings.isEmpty {
            out += "<h2>Data findings</h2><ul class=\"findings\">\n"
            for f in r.findings { out += "<li><b>\(escape(f.column))</b> (\(f.kind.rawValue)): \(escape(f.message))</li>\n" }
            out += "</ul>\n"
        }
        out += "<h2>Distributions</h2><p class=\"legend\"><span class=\"ref\">■</span> reference <span class=\"cur\">■</span> current (share of rows)</p>\n"
        for d in r.distributions ?? [] {
            let c = r.columns.first { $0.name == d.name }
            out += "<section id=\"col-\(anchor(d.name))\"><h3>\(escape(d.name))"
            if let c { out += " <small>\(escape(c.methodName)) \(score(c.score))\(c.drifted ? " · drifted" : "")</small>" }
            out += "</h3>\n\(chart(d))</section>\n"
        }
        out += "</body></html>\n"
        return out
    }

    /// Paired bars per bin or category, as inline SVG.
    static func chart(_ d: ColumnDistribution) -> String {
        let n = d.labels.count
        guard n > 0 else { return "<p>no values</p>" }
        let width = 720.0, height = 200.0, left = 40.0, bottom = 46.0
        let top = Swift.max(d.reference.max() ?? 0, d.current.max() ?? 0, 1e-9)
        let slot = (width - left) / Double(n)
        let bar = Swift.max(slot * 0.4, 1)
        var svg = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height + bottom))\" width=\"100%\" role=\"img\" aria-label=\"\(escape(d.name)) distribution\">"
        svg += "<line x1=\"\(left)\" y1=\"\(height)\" x2=\"\(width)\" y2=\"\(height)\" class=\"axis\"/>"
        svg += "<text x=\"\(left - 4)\" y=\"10\" class=\"tick\" text-anchor=\"end\">\(String(format: "%.0f%%", top * 100))</text>"
        for i in 0..<n {
            let x = left + Double(i) * slot + slot * 0.1
            for (k, share) in [d.reference[i], d.current[i]].enumerated() {
                let h = share / top * (height - 12)
                svg += "<rect class=\"\(k == 0 ? "ref" : "cur")\" x=\"\(fmt(x + Double(k) * bar))\" y=\"\(fmt(height - h))\" width=\"\(fmt(bar))\" height=\"\(fmt(h))\">"
                svg += "<title>\(escape(d.labels[i])): \(k == 0 ? "reference" : "current") \(String(format: "%.2f%%", share * 100))</title></rect>"
            }
            if n <= 20 || i % (n / 10) == 0 {
                let label = d.labels[i].count > 12 ? String(d.labels[i].prefix(11)) + "…" : d.labels[i]
                svg += "<text class=\"tick\" transform=\"translate(\(fmt(x + bar)),\(Int(height + 10))) rotate(35)\">\(escape(label))</text>"
            }
        }
        return svg + "</svg>"
    }

    static func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

    static func anchor(_ s: String) -> String {
        String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : "-" })
    }

    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#1b1f24;padding:0 16px}
        h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:15px;margin:18px 0 4px}h3 small{font-weight:normal;color:#57606a}
        table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #d0d7de;text-align:left}
        td.num{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#fff1f0}
        .verdict{font-weight:600}.verdict.bad{color:#b42318}.verdict.good{color:#1a7f37}.files{color:#57606a}
        rect.ref{fill:#4c78a8}rect.cur{fill:#f58518}.ref{color:#4c78a8}.cur{color:#f58518}
        .axis{stroke:#8c959f}.tick{font-size:10px;fill:#57606a}section{border-top:1px solid #eaeef2}
        """
}
