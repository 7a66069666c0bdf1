import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import NIOCore

/// Minimal, escaping-by-default HTML building for the server-rendered UI.
enum HTML {
    /// Escapes text for element content and attribute values.
    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    /// Percent-encodes a path segment or query value.
    static func url(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    static func page(title: String, active: String, body: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Loom</title>
            <link rel="stylesheet" href="/static/loom.css">
            </head><body>
            <header><a class="brand" href="/">Loom</a>
            <nav><a href="/"\(active == "experiments" ? " class=\"active\"" : "")>Experiments</a>
            <a href="/models"\(active == "models" ? " class=\"active\"" : "")>Models</a>
            <a href="/datasets"\(active == "datasets" ? " class=\"active\"" : "")>Datasets</a>
            <a href="/pipelines"\(active == "pipelines" ? " class=\"active\"" : "")>Pipelines</a>
            <a href="/endpoints"\(active == "endpoints" ? " class=\"active\"" : "")>Endpoints</a>
            <a href="/monitors"\(active == "monitors" ? " class=\"active\"" : "")>Monitors</a>
            <a href="/gateway"\(active == "gateway" ? " class=\"active\"" : "")>Gateway</a>
            <a href="/prompts"\(active == "prompts" ? " class=\"active\"" : "")>Prompts</a>
            <a href="/indexes"\(active == "indexes" ? " class=\"active\"" : "")>Indexes</a>
            <a href="/flows"\(active == "flows" ? " class=\"active\"" : "")>Flows</a>
            <a href="/evaluations"\(active == "evaluations" ? " class=\"active\"" : "")>Evaluations</a>
            <a href="/openapi.yaml">API</a></nav></header>
            <main>\(body)</main>
            <script src="/static/loom.js"></script>
            </body></html>
            """
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func time(_ ms: Int64?) -> String {
        guard let ms, ms > 0 else { return "–" }
        let date = Date(timeIntervalSince1970: Double(ms) / 1000)
        return formatter.string(from: date)
    }

    static let formatter: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.timeZone = .gmt
        return f
    }()

    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "∞" : "-∞" }
        if v == v.rounded(), abs(v) < 1e12 { return String(Int64(v)) }
        return String(format: "%.6g", v)
    }

    static func duration(_ start: Int64, _ end: Int64?) -> String {
        guard let end, end >= start else { return "–" }
        let s = Double(end - start) / 1000
        if s < 60 { return String(format: "%.1fs", s) }
        if s < 3600 { return String(format: "%.1fmin", s / 60) }
        return String(format: "%.1fh", s / 3600)
    }
}
