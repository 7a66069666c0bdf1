import Foundation
import HTTPTypes
import Hummingbird
import LoomCore
import LoomGenAI
import LoomSpec

/// `/api/v1/indexes/...`: grounding indexes (docs/indexes.md): specs, builds, versions with
/// their documents, queries and staleness.
extension APIv1Controller {
    struct IndexVersionBody: Encodable, Sendable {
        let index: String
        let version: Int64
        let specVersion: Int64
        let status: String
        let createdBy: String
        let creationTime: Millis
        let documents: Int64
        let chunks: Int64
        let contentDigest: String
        let newestSourceTime: Millis?
        let error: String?
        let details: JSONValue

        init(_ v: IndexVersion) {
            index = v.index
            version = v.version
            specVersion = v.specVersion
            status = v.status.rawValue
            createdBy = v.createdBy
            creationTime = v.creationTime
            documents = v.documents
            chunks = v.chunks
            contentDigest = v.contentDigest
            newestSourceTime = v.newestSourceTime
            error = v.error
            details = (try? JSONValue.parse(Array(v.details.utf8))) ?? .object([:])
        }
    }

    struct IndexBody: Encodable, Sendable {
        let name: String
        let description: String?
        let version: Int64
        let spec: String?
        let schedule: String?
        let embeddingRoute: String?
        let createdBy: String
        let creationTime: Millis
        let lastUpdatedTime: Millis
        let latest: IndexVersionBody?
        let versions: [IndexVersionBody]?
        let pendingChanges: [String]?
        let removedSources: [String]?
        let stalenessSeconds: Double?
    }

    struct IndexBuildBody: Encodable, Sendable {
        let changed: Bool
        let version: IndexVersionBody
        let reusedDocuments: Int
        let parsedDocuments: Int
        let embeddedChunks: Int
        let problems: [String]
    }

    struct IndexQueryBody: Encodable, Sendable {
        let index: String
        let version: Int64
        let mode: String
        let hits: [IndexHit]
    }

    struct IndexDocumentsBody: Encodable, Sendable {
        let version: IndexVersionBody
        let documents: [IndexDocument]
    }

    static func indexBody(_ i: GroundingIndex, latest: IndexVersion?, versions: [IndexVersion]? = nil, status: IndexStatus? = nil, withSpec: Bool) -> IndexBody {
        let spec = try? IndexSpec.parse(yaml: i.specText)
        return IndexBody(
            name: i.name, description: spec?.description, version: i.version, spec: withSpec ? i.specText : nil, schedule: spec?.schedule?.expression,
            embeddingRoute: spec?.embeddings?.route, createdBy: i.createdBy, creationTime: i.creationTime, lastUpdatedTime: i.lastUpdatedTime,
            latest: latest.map(IndexVersionBody.init), versions: versions?.map(IndexVersionBody.init), pendingChanges: status?.changed,
            removedSources: status?.removed, stalenessSeconds: status?.stalenessSeconds)
    }

    func addIndexRoutes(to routes: Routes) {
        let p = Self.prefix + "/indexes"
        let indexes = services.gateway.indexes
        let auth = self.auth

        // Applies a `kind: index` spec (YAML, or JSON {"spec": "YAML"}).
        routes.post(p) { request, context in
            let text = try await Self.specText(request, context)
            try await auth.requireRole(context, .editor)
            let (index, changed) = try await indexes.apply(yaml: text, workspace: context.workspace, actor: context.actor.username)
            let latest = try await indexes.latest(workspace: context.workspace, name: index.name)
            return try Self.respond(
                AppliedIndex(index: Self.indexBody(index, latest: latest, withSpec: false), changed: changed), status: changed && index.version == 1 ? .created : .ok)
        }
        routes.get(p) { _, context in
            try await auth.requireRole(context, .viewer)
            let items = try await indexes.list(workspace: context.workspace).map { Self.indexBody($0.index, latest: $0.latest, withSpec: false) }
            return try Self.respond(Listing(items: items, nextPageToken: nil))
        }
        routes.get("\(p)/:name") { _, context in
            try await auth.requireRole(context, .viewer)
            let name = try Self.param(context, "name")
            let (index, _) = try await indexes.index(workspace: context.workspace, name: name)
            let versions = try await indexes.versions(workspace: context.workspace, name: name)
            let status = try await indexes.status(workspace: context.workspace, name: name)
            return try Self.respond(Self.indexBody(index, latest: status.latest, versions: versions, status: status, withSpec: true))
        }
        routes.delete("\(p)/:name") { _, context in
            try await auth.requireRole(context, .editor)
            try await indexes.delete(workspace: context.workspace, name: try Self.param(context, "name"))
            return Self.noContent
        }
        // Builds a new version from the server's sources root (LOOM_SOURCES_ROOT).
        routes.post("\(p)/:name/build") { _, context in
            try await auth.requireRole(context, .editor)
            let build = try await indexes.build(workspace: context.workspace, name: try Self.param(context, "name"), actor: context.actor.username)
            return try Self.respond(
                IndexBuildBody(
                    changed: build.changed, version: IndexVersionBody(build.version), reusedDocuments: build.reusedDocuments,
                    parsedDocuments: build.parsedDocuments, embeddedChunks: build.embeddedChunks, problems: build.problems),
                status: build.changed ? .created : .ok)
        }
        routes.get("\(p)/:name/versions/:version") { _, context in
            try await auth.requireRole(context, .viewer)
            let name = try Self.param(context, "name")
            let raw = try Self.param(context, "version")
            guard let number = Int64(raw), number > 0 else { throw LoomError.invalidParameter("version must be a whole number above 0, not '\(raw)'") }
            let (version, documents) = try await indexes.version(workspace: context.workspace, name: name, number: number)
            return try Self.respond(IndexDocumentsBody(version: IndexVersionBody(version), documents: documents))
        }
        // {query, mode: bm25|vector|hybrid, k, filter: {key: value | {in: [...]} | {ne: value}}, version}
        routes.post("\(p)/:name/query") { request, context in
            let body = try await Self.body(request, context)
            try await auth.requireRole(context, .viewer)
            let name = try Self.param(context, "name")
            let text = try body.requiredString("query")
            let modeText = try body.string("mode") ?? "hybrid"
            guard let mode = RetrievalMode(rawValue: modeText) else { throw LoomError.invalidParameter("mode must be bm25, vector or hybrid, not '\(modeText)'") }
            let filter = try Self.metadataFilter(body.fields["filter"])
            let result = try await indexes.query(
                workspace: context.workspace, name: name, text: text, mode: mode, k: try body.int("k") ?? 5, filter: filter, version: try body.int64("version"),
                efSearch: try body.int("ef_search"))
            return try Self.respond(IndexQueryBody(index: name, version: result.version.version, mode: mode.rawValue, hits: result.hits))
        }
    }

    struct AppliedIndex: Encodable, Sendable {
        let index: IndexBody
        let changed: Bool
    }

    /// A query's `filter`: what `MetadataFilter` decodes, refused with its reason otherwise.
    static func metadataFilter(_ value: JSONValue?) throws -> MetadataFilter? {
        guard let value, value != .null else { return nil }
        guard case .object = value else { throw LoomError.invalidParameter("filter must be an object of metadata keys and values") }
        do {
            return try JSONDecoder().decode(MetadataFilter.self, from: Data(value.jsonBytes))
        } catch {
            throw LoomError.invalidParameter("filter: \(Self.decodingMessage(error))")
        }
    }

    static func decodingMessage(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c), DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.keyNotFound(_, let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : path + ": ") + c.debugDescription
        default:
            return "\(error)"
        }
    }
}
