import Foundation
import HTTPTypes
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomTracking
import NIOCore

/// MLflow's proxied artifact service (`mlflow server --serve-artifacts`): streaming upload,
/// download, listing and deletion below the artifact store's root.
struct ArtifactsController {
    typealias Context = LoomRequestContext
    let services: ServerServices
    var auth: Authorization { Authorization(access: services.access, tracking: services.tracking) }
    var artifacts: any ArtifactStore { services.artifacts }

    static let prefix = "/api/2.0/mlflow-artifacts/artifacts"

    func addRoutes(to routes: Routes) {
        routes.get(Self.prefix) { request, context in
            let query = request.query
            let path = try ArtifactPath(query["path"] ?? "", allowRoot: true)
            try await authorize(context, path, .read)
            let entries = try await artifacts.list(path)
            let files = entries.map { MLFileInfo(path: ($0.path as NSString).lastPathComponent, is_dir: $0.isDirectory, file_size: $0.size) }
            return try JSONResponse.make(PagedEnvelope(key: "files", items: files, nextPageToken: nil))
        }
        routes.get("\(Self.prefix)/**") { request, context in
            let path = try Self.path(context)
            try await authorize(context, path, .read)
            return try await Self.download(path, from: artifacts, attachment: true)
        }
        routes.put("\(Self.prefix)/**") { request, context in
            let path = try Self.path(context)
            try await authorize(context, path, .edit)
            let stored = try await artifacts.write(path, from: request.body, maxBytes: services.configuration.maxArtifactBytes)
            var headers = HTTPFields()
            headers[HTTPField.Name("X-Loom-Digest")!] = stored.digest
            return Response(status: .ok, headers: headers, body: ResponseBody())
        }
        routes.delete("\(Self.prefix)/**") { request, context in
            let path = try Self.path(context)
            try await authorize(context, path, .edit)
            try await artifacts.delete(path)
            return JSONResponse.emptyObject
        }
    }

    /// Streams the file at `path`; 404 when there is none.
    static func download(_ path: ArtifactPath, from store: any ArtifactStore, attachment: Bool) async throws -> Response {
        guard let size = try await store.fileSize(path) else {
            throw LoomError.notFound("No artifact found at '\(path)'")
        }
        var headers = HTTPFields()
        headers[.contentType] = contentType(for: path.name)
        if attachment {
            headers[.contentDisposition] = "attachment; filename=\"\(path.name.replacingOccurrences(of: "\"", with: ""))\""
        }
        headers[.contentLength] = String(size)
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(size)) { writer in
            try await store.read(path, chunkSize: 256 * 1024) { chunk in
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        })
    }

    /// The artifact path from the catch-all segments, each percent-decoded once.
    static func path(_ context: Context) throws(LoomError) -> ArtifactPath {
        let raw = context.parameters.getCatchAll()
        var segments: [String] = []
        for seg in raw {
            guard let decoded = String(seg).removingPercentEncoding else {
                throw .invalidParameter("Invalid artifact path: bad percent-encoding")
            }
            if decoded.contains("/") || decoded.contains("\\") {
                throw .invalidParameter("Invalid artifact path '\(raw.joined(separator: "/"))': encoded separators are not allowed")
            }
            segments.append(decoded)
        }
        return try ArtifactPath(segments.joined(separator: "/"))
    }

    /// Artifacts of the default layout live under `<experiment id>/...`; that experiment's
    /// permission governs them. Paths outside that layout are for administrators.
    func authorize(_ context: Context, _ path: ArtifactPath, _ needed: Permission) async throws {
        guard context.authEnabled, !context.actor.isAdmin else { return }
        guard let first = path.segments.first, Int64(first) != nil else {
            throw LoomError.permissionDenied("Permission denied: only administrators may access '\(path)'")
        }
        try await auth.requireExperiment(context, first, needed)
    }

    static func contentType(for name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "json": return "application/json"
        case "txt", "log", "yaml", "yml", "md", "py", "csv", "tsv": return "text/plain; charset=utf-8"
        case "html", "htm": return "text/plain; charset=utf-8"  // never render user HTML inline
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "svg": return "text/plain; charset=utf-8"
        default: return name == "MLmodel" ? "text/plain; charset=utf-8" : "application/octet-stream"
        }
    }
}
