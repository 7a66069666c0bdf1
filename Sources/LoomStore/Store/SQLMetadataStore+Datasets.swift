import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createDatasetVersion(_ new: DatasetVersion) async throws -> (version: DatasetVersion, created: Bool) {
        let engine = self.engine
        return try await write("register_dataset", "dataset", entityIDFrom: { (r: (version: DatasetVersion, created: Bool)) in "\(r.version.name)/\(r.version.version)" }) { db in
            if let existing = try await Self.datasetVersion(db, workspace: new.workspace, name: new.name, digest: new.digest) {
                return (existing, false)
            }
            let version = try await Self.insertDatasetVersion(db, new, engine: engine)
            return (version, true)
        }
    }

    /// Inserts `new` as the next version of its name (numbered from 1). The caller checked that
    /// its digest is new for the name.
    static func insertDatasetVersion(_ db: any SQLDatabase, _ new: DatasetVersion, engine: SQLEngine) async throws -> DatasetVersion {
        if engine == .postgresql {
            // Two registrations of one name must not pick the same number.
            try await db.raw("SELECT pg_advisory_xact_lock(7311002, hashtext(\(bind: new.workspace + "/" + new.name)))").run()
        }
        let next = try await db.raw("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM dataset_versions WHERE workspace = \(bind: new.workspace) AND name = \(bind: new.name)").first()
        var v = new
        v.version = try next?.int64("next") ?? 1
        try await db.raw("""
            INSERT INTO dataset_versions (workspace, name, version, digest, format, source_type, source, storage_path, size_bytes,
              row_count, schema_json, profile_json, description, lineage_json, created_by, creation_time)
            VALUES (\(bind: v.workspace), \(bind: v.name), \(bind: v.version), \(bind: v.digest), \(bind: v.format), \(bind: v.sourceType),
              \(bind: v.source), \(bind: v.storagePath), \(bind: v.sizeBytes), \(bind: v.rowCount), \(bind: v.schema), \(bind: v.profile),
              \(bind: v.description), \(bind: v.lineage), \(bind: v.createdBy), \(bind: v.creationTime))
            """).run()
        return v
    }

    public func datasetVersion(name: String, version: Int64, workspace: String) async throws -> DatasetVersion? {
        try await read { db in
            try await db.raw("SELECT * FROM dataset_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) AND version = \(bind: version)")
                .first().map(Self.datasetVersion)
        }
    }

    public func datasetVersion(name: String, digest: String, workspace: String) async throws -> DatasetVersion? {
        try await read { db in try await Self.datasetVersion(db, workspace: workspace, name: name, digest: digest) }
    }

    static func datasetVersion(_ db: any SQLDatabase, workspace: String, name: String, digest: String) async throws -> DatasetVersion? {
        try await db.raw("SELECT * FROM dataset_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) AND digest = \(bind: digest)")
            .first().map(Self.datasetVersion)
    }

    public func datasetVersions(name: String, workspace: String) async throws -> [DatasetVersion] {
        try await read { db in
            try await db.raw("SELECT * FROM dataset_versions WHERE workspace = \(bind: workspace) AND name = \(bind: name) ORDER BY version DESC")
                .all().map(Self.datasetVersion)
        }
    }

    public func listDatasets(workspace: String) async throws -> [DatasetSummary] {
        try await read { db in
            let rows = try await db.raw("""
                SELECT v.*, c.versions FROM dataset_versions v
                JOIN (SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM dataset_versions WHERE workspace = \(bind: workspace) GROUP BY name) c
                  ON c.name = v.name AND c.latest = v.version
                WHERE v.workspace = \(bind: workspace)
                ORDER BY v.name
                """).all()
            return try rows.map { row in
                let latest = try Self.datasetVersion(row)
                return DatasetSummary(name: latest.name, workspace: latest.workspace, versions: try row.int64("versions"), latest: latest)
            }
        }
    }

    static func datasetVersion(_ row: any SQLRow) throws -> DatasetVersion {
        DatasetVersion(
            name: try row.string("name"), version: try row.int64("version"), workspace: try row.string("workspace"),
            digest: try row.string("digest"), format: try row.string("format"), sourceType: try row.string("source_type"),
            source: try row.string("source"), storagePath: try row.optionalString("storage_path"),
            sizeBytes: try row.optionalInt64("size_bytes"), rowCount: try row.optionalInt64("row_count"),
            schema: try row.optionalString("schema_json"), profile: try row.optionalString("profile_json"),
            description: try row.optionalString("description"), lineage: try row.optionalString("lineage_json"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"))
    }
}
