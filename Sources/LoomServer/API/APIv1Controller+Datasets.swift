import Foundation
import Hummingbird
import LoomCore
import LoomData
import LoomStore
import LoomTracking

extension APIv1Controller {
    /// A dataset version as the API returns it: the stored schema and profile as JSON objects.
    struct DatasetVersionBody: Encodable, Sendable {
        let name: String
        let version: Int64
        let workspace: String
        let digest: String
        let format: String
        let sourceType: String
        let source: String
        let storagePath: String?
        let sizeBytes: Int64?
        let rowCount: Int64?
        let description: String?
        let createdBy: String
        let creationTime: Millis
        let schema: JSONText?
        let profile: JSONText?
        let lineage: JSONText?

        init(_ v: DatasetVersion, withProfile: Bool) {
            (name, version, workspace, digest, format) = (v.name, v.version, v.workspace, v.digest, v.format)
            (sourceType, source, storagePath, sizeBytes, rowCount) = (v.sourceType, v.source, v.storagePath, v.sizeBytes, v.rowCount)
            (description, createdBy, creationTime) = (v.description, v.createdBy, v.creationTime)
            schema = v.schema.map(JSONText.init)
            profile = withProfile ? v.profile.map(JSONText.init) : nil
            lineage = v.lineage.map(JSONText.init)
        }
    }

    struct DatasetBody: Encodable, Sendable {
        let name: String
        let versions: Int64
        let latest: DatasetVersionBody
    }

    func addDatasetRoutes(to routes: Routes) {
        let p = Self.prefix + "/datasets"
        routes.get(p) { _, context in
            try await auth.requireRole(context, .viewer)
            let list = try await tracking.store.listDatasets(workspace: context.workspace)
            return try Self.respond(Listing(
                items: list.map { DatasetBody(name: $0.name, versions: $0.versions, latest: DatasetVersionBody($0.latest, withProfile: false)) },
                nextPageToken: nil))
        }
        routes.get("\(p)/:name/versions") { _, context in
            let name = try Self.param(context, "name")
            try await auth.requireRole(context, .viewer)
            let versions = try await tracking.store.datasetVersions(name: name, workspace: context.workspace)
            guard !versions.isEmpty else { throw LoomError.notFound("No dataset named \(name)") }
            return try Self.respond(Listing(items: versions.map { DatasetVersionBody($0, withProfile: false) }, nextPageToken: nil))
        }
        routes.get("\(p)/:name/versions/:version") { _, context in
            let name = try Self.param(context, "name")
            let version = try Self.param(context, "version")
            try await auth.requireRole(context, .viewer)
            let number: Int64? = version == "latest" ? nil : try Validate.version(version)
            let v = try await tracking.datasetVersion(name: name, version: number, workspace: context.workspace)
            return try Self.respond(DatasetVersionBody(v, withProfile: true))
        }
        // The request body is the file itself; `file_name` names its format (.csv, .tsv, .jsonl,
        // .ndjson, optionally .gz).
        routes.post("\(p)/:name/versions") { request, context in
            let name = try Self.param(context, "name")
            try Validate.datasetName(name)
            let fileName = try request.query.required("file_name")
            // Letters, digits, '.', '_' and '-' only: it names the staged file.
            guard (try? Validate.datasetName(fileName)) != nil, TableFormat.of(fileName: fileName) != nil else {
                throw LoomError.invalidParameter("Invalid file_name '\(fileName)': a plain file name (letters, digits, '.', '_', '-') ending in .csv, .tsv, .jsonl or .ndjson (optionally .gz)")
            }
            let description = request.query["description"]
            try await auth.requireRole(context, .editor)
            let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-upload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: staging) }
            let file = staging.appendingPathComponent(fileName)
            try await Self.save(request.body, to: file, maxBytes: services.configuration.maxArtifactBytes)
            let r = try await tracking.registerDataset(
                name: name, path: file.path, description: description, sourceType: "upload", source: fileName, workspace: context.workspace)
            return try Self.respond(DatasetVersionBody(r.version, withProfile: true), status: r.created ? .created : .ok)
        }
    }

    /// Writes a request body to a new file, refusing more than `maxBytes`.
    static func save(_ body: RequestBody, to file: URL, maxBytes: Int64?) async throws {
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
            let handle = FileHandle(forWritingAtPath: file.path) else {
            throw LoomError.unavailable("cannot stage the upload")
        }
        defer { try? handle.close() }
        var total: Int64 = 0
        for try await buffer in body {
            total += Int64(buffer.readableBytes)
            if let maxBytes, total > maxBytes { throw LoomError.payloadTooLarge("The upload exceeds \(maxBytes) bytes") }
            try handle.write(contentsOf: Data(buffer.readableBytesView))
        }
    }
}

/// JSON text embedded as JSON (not as a string) in a response.
struct JSONText: Encodable, Sendable {
    let value: JSONValue?
    init(_ text: String) {
        value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value ?? .null)
    }
}
