import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func applyGroundingIndex(_ index: GroundingIndex) async throws -> (GroundingIndex, changed: Bool) {
        let outcome: (GroundingIndex, Bool) = try await write("apply_index", "index", index.workspace + "/" + index.name) { db in
            let match = SQLQueryString("workspace = \(bind: index.workspace) AND name = \(bind: index.name)")
            if let row = try await db.raw("SELECT * FROM grounding_indexes WHERE \(match)").first() {
                let old = try Self.groundingIndex(row)
                guard old.specText != index.specText else { return (old, false) }
                try await db.raw("""
                    UPDATE grounding_indexes SET spec_text = \(bind: index.specText), version = version + 1, last_updated_time = \(bind: index.lastUpdatedTime)
                    WHERE \(match)
                    """).run()
            } else {
                try await db.raw("""
                    INSERT INTO grounding_indexes (workspace, name, spec_text, version, created_by, creation_time, last_updated_time)
                    VALUES (\(bind: index.workspace), \(bind: index.name), \(bind: index.specText), 1, \(bind: index.createdBy),
                      \(bind: index.creationTime), \(bind: index.lastUpdatedTime))
                    """).run()
            }
            guard let saved = try await db.raw("SELECT * FROM grounding_indexes WHERE \(match)").first() else {
                throw LoomError.internalError("index \(index.name) vanished while it was applied")
            }
            return (try Self.groundingIndex(saved), true)
        }
        return (outcome.0, changed: outcome.1)
    }

    public func groundingIndexes(workspace: String?) async throws -> [GroundingIndex] {
        try await read { db in
            let filter: SQLQueryString = workspace.map { "WHERE workspace = \(bind: $0)" } ?? ""
            return try await db.raw("SELECT * FROM grounding_indexes \(filter) ORDER BY workspace, name").all().map(Self.groundingIndex)
        }
    }

    public func groundingIndex(workspace: String, name: String) async throws -> GroundingIndex? {
        try await read { db in
            try await db.raw("SELECT * FROM grounding_indexes WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first().map(Self.groundingIndex)
        }
    }

    public func deleteGroundingIndex(workspace: String, name: String) async throws -> Bool {
        try await write("delete_index", "index", workspace + "/" + name) { db in
            guard try await db.raw("SELECT name FROM grounding_indexes WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() != nil else {
                return false
            }
            try await db.raw("DELETE FROM index_documents WHERE workspace = \(bind: workspace) AND index_name = \(bind: name)").run()
            try await db.raw("DELETE FROM index_versions WHERE workspace = \(bind: workspace) AND index_name = \(bind: name)").run()
            try await db.raw("DELETE FROM grounding_indexes WHERE workspace = \(bind: workspace) AND name = \(bind: name)").run()
            return true
        }
    }

    public func addIndexVersion(_ version: IndexVersion, documents: [IndexDocument]) async throws -> IndexVersion {
        try await write("build_index", "index", entityIDFrom: { "\($0.workspace)/\($0.index)@\($0.version)" }) { db in
            let v = version
            guard try await db.raw("SELECT name FROM grounding_indexes WHERE workspace = \(bind: v.workspace) AND name = \(bind: v.index)").first() != nil else {
                throw LoomError.notFound("No index named \(v.index) in workspace \(v.workspace)")
            }
            let last = try await db.raw("""
                SELECT MAX(version) AS n FROM index_versions WHERE workspace = \(bind: v.workspace) AND index_name = \(bind: v.index)
                """).first()?.optionalInt64("n") ?? 0
            var saved = v
            saved.version = last + 1
            try await db.raw("""
                INSERT INTO index_versions (workspace, index_name, version, spec_version, status, created_by, creation_time, documents, chunks,
                  content_digest, artifact_path, details, newest_source_time, error)
                VALUES (\(bind: v.workspace), \(bind: v.index), \(bind: saved.version), \(bind: v.specVersion), \(bind: v.status.rawValue),
                  \(bind: v.createdBy), \(bind: v.creationTime), \(bind: v.documents), \(bind: v.chunks), \(bind: v.contentDigest),
                  \(bind: v.artifactPath), \(bind: v.details), \(bind: v.newestSourceTime), \(bind: v.error))
                """).run()
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            var start = 0
            while start < documents.count {
                let part = documents[start..<min(start + 200, documents.count)]
                start += part.count
                var insert = db.insert(into: "index_documents")
                    .columns("workspace", "index_name", "version", "source", "digest", "title", "metadata", "chunks", "modified_time")
                for d in part {
                    let metadata = String(decoding: try encoder.encode(d.metadata), as: UTF8.self)
                    insert = insert.values(SQLBind(v.workspace), SQLBind(v.index), SQLBind(saved.version), SQLBind(d.source), SQLBind(d.digest),
                        SQLBind(d.title), SQLBind(metadata), SQLBind(d.chunks), SQLBind(d.modifiedTime))
                }
                try await insert.run()
            }
            return saved
        }
    }

    public func leaseIndexSchedule(workspace: String, name: String, owner: String, until: Millis, now: Millis) async throws -> Bool {
        try await writeUnaudited { db in
            try await db.raw("""
                UPDATE grounding_indexes SET lease_owner = \(bind: owner), lease_expiry = \(bind: until)
                WHERE workspace = \(bind: workspace) AND name = \(bind: name)
                  AND (lease_owner IS NULL OR lease_owner = \(bind: owner) OR lease_expiry < \(bind: now))
                """).run()
            let row = try await db.raw("SELECT lease_owner, lease_expiry FROM grounding_indexes WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first()
            return try row?.optionalString("lease_owner") == owner && row?.optionalInt64("lease_expiry") == until
        }
    }

    public func indexVersions(workspace: String, index: String) async throws -> [IndexVersion] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM index_versions WHERE workspace = \(bind: workspace) AND index_name = \(bind: index) ORDER BY version DESC
                """).all().map(Self.indexVersion)
        }
    }

    public func indexVersion(workspace: String, index: String, version: Int64) async throws -> IndexVersion? {
        try await read { db in
            try await db.raw("""
                SELECT * FROM index_versions WHERE workspace = \(bind: workspace) AND index_name = \(bind: index) AND version = \(bind: version)
                """).first().map(Self.indexVersion)
        }
    }

    public func indexDocuments(workspace: String, index: String, version: Int64) async throws -> [IndexDocument] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM index_documents WHERE workspace = \(bind: workspace) AND index_name = \(bind: index) AND version = \(bind: version)
                ORDER BY source
                """).all().map(Self.indexDocument)
        }
    }

    static func groundingIndex(_ row: any SQLRow) throws -> GroundingIndex {
        GroundingIndex(
            workspace: try row.string("workspace"), name: try row.string("name"), specText: try row.string("spec_text"), version: try row.int64("version"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), lastUpdatedTime: try row.int64("last_updated_time"))
    }

    static func indexVersion(_ row: any SQLRow) throws -> IndexVersion {
        let status = try row.string("status")
        guard let parsed = IndexVersion.Status(rawValue: status) else { throw LoomError.internalError("index version status '\(status)'") }
        return IndexVersion(
            workspace: try row.string("workspace"), index: try row.string("index_name"), version: try row.int64("version"),
            specVersion: try row.int64("spec_version"), status: parsed, createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"),
            documents: try row.int64("documents"), chunks: try row.int64("chunks"), contentDigest: try row.string("content_digest"),
            artifactPath: try row.string("artifact_path"), details: try row.string("details"), newestSourceTime: try row.optionalInt64("newest_source_time"),
            error: try row.optionalString("error"))
    }

    static func indexDocument(_ row: any SQLRow) throws -> IndexDocument {
        let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(try row.string("metadata").utf8))) ?? [:]
        return IndexDocument(
            source: try row.string("source"), digest: try row.string("digest"), title: try row.string("title"), metadata: metadata,
            chunks: try row.int64("chunks"), modifiedTime: try row.int64("modified_time"))
    }
}
