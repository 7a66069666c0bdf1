import Foundation
import LoomArtifacts
import LoomCore
import LoomData
import LoomStore

extension TrackingService {
    /// What registering a dataset did.
    public struct DatasetRegistration: Sendable {
        public var version: DatasetVersion
        /// False when the name already had a version with this content.
        public var created: Bool
        public var profile: DatasetProfile
    }

    /// Registers the file or folder at `path` as a version of dataset `name`: reads it once
    /// (digest, schema, profile; malformed data is an error and records nothing), then copies
    /// its files into the artifact store under `datasets/<name>/<digest>/` unless `copy` is
    /// false, and records the version. Unchanged content yields the version it already has.
    public func registerDataset(
        name: String, path: String, description: String? = nil, copy: Bool = true,
        sourceType: String = "local", source: String? = nil, workspace: String? = nil
    ) async throws -> DatasetRegistration {
        try Validate.datasetName(name)
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        let files = try TableFiles.list(path)
        var profiler = Profiler()
        let content = try TableReader.read(files, into: &profiler)
        let profile = profiler.profile()
        if let existing = try await store.datasetVersion(name: name, digest: content.digest, workspace: workspace) {
            return DatasetRegistration(version: existing, created: false, profile: profile)
        }
        var storagePath: String?
        if copy {
            let folder = try ArtifactPath("datasets/\(name)/\(content.digest.replacingOccurrences(of: "sha256:", with: "").prefix(32))")
            for file in files {
                let stored = try await artifacts.write(try folder.appending(file.relativePath), from: FileChunks(path: file.path), maxBytes: nil)
                let expected = content.files.first { $0.path == file.relativePath }?.digest
                guard stored.digest == expected else {
                    throw LoomError.invalidState("\(file.relativePath) changed while it was being registered; register it again")
                }
            }
            storagePath = folder.string
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let schema = DatasetSchema(columns: profile.columns.map { .init(name: $0.name, type: $0.type) })
        let version = DatasetVersion(
            name: name, workspace: workspace, digest: content.digest, format: content.format.rawValue,
            sourceType: sourceType, source: source ?? URL(fileURLWithPath: path).standardizedFileURL.path,
            storagePath: storagePath, sizeBytes: content.size, rowCount: profile.rows,
            schema: String(decoding: try encoder.encode(schema), as: UTF8.self),
            profile: String(decoding: try encoder.encode(profile), as: UTF8.self),
            description: description, createdBy: AuditContext.current.actor, creationTime: LoomStore.Clock.nowMillis())
        let (recorded, created) = try await store.createDatasetVersion(version)
        return DatasetRegistration(version: recorded, created: created, profile: profile)
    }

    /// A version by number, or the newest when `version` is nil.
    public func datasetVersion(name: String, version: Int64?, workspace: String? = nil) async throws -> DatasetVersion {
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        if let version {
            guard let v = try await store.datasetVersion(name: name, version: version, workspace: workspace) else {
                throw LoomError.notFound("Dataset \(name) has no version \(version)")
            }
            return v
        }
        guard let newest = try await store.datasetVersions(name: name, workspace: workspace).first else {
            throw LoomError.notFound("No dataset named \(name)")
        }
        return newest
    }
}

/// The columns of a dataset version and their types, as stored with it.
public struct DatasetSchema: Sendable, Codable, Hashable {
    public struct Column: Sendable, Codable, Hashable {
        public var name: String
        public var type: ColumnType
    }
    public var columns: [Column]
}
