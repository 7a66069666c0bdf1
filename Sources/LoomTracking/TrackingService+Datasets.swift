import Foundation
import LoomArtifacts
import LoomCore
import LoomData
import LoomStore
import NIOCore

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
        sourceType: String = "local", source: String? = nil, lineage: DatasetLineage? = nil, workspace: String? = nil
    ) async throws -> DatasetRegistration {
        try Validate.datasetName(name)
        try Validate.length(description, path: "description", limit: Limits.maxDescriptionLength)
        let workspace = workspace ?? AuditContext.current.workspace ?? Workspace.defaultName
        let files = try TableFiles.list(path)
        let (content, profile) = try await DataWork.run { try ParallelProfile.run(files) }
        if let existing = try await store.datasetVersion(name: name, digest: content.digest, workspace: workspace) {
            return DatasetRegistration(version: existing, created: false, profile: profile)
        }
        var storagePath: String?
        if copy {
            let folder = try ArtifactPath("datasets/\(name)/\(content.digest.replacingOccurrences(of: "sha256:", with: "").prefix(32))")
            do {
                for file in files {
                    let stored = try await artifacts.write(try folder.appending(file.relativePath), from: FileChunks(path: file.path), maxBytes: nil)
                    let expected = content.files.first { $0.path == file.relativePath }?.digest
                    guard stored.digest == expected else {
                        throw LoomError.invalidState("\(file.relativePath) changed while it was being registered; register it again")
                    }
                }
            } catch {
                // Leave no copy of content that no version records.
                try? await artifacts.delete(folder)
                throw error
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
            description: description, lineage: try lineage.map { String(decoding: try encoder.encode($0), as: UTF8.self) },
            createdBy: AuditContext.current.actor, creationTime: LoomStore.Clock.nowMillis())
        let (recorded, created) = try await store.createDatasetVersion(version)
        if let lineage {
            // Lineage: the data this version was made from.
            try? await store.addLineageEdges(lineage.inputs.map { input in
                LineageEdge(
                    workspace: workspace, source: input.name.map { LineageNodes.dataset($0, input.version ?? 0) } ?? LineageNodes.file(input.path ?? ""),
                    target: LineageNodes.dataset(recorded.name, recorded.version), relation: "derived:\(lineage.operation)", creationTime: recorded.creationTime)
            })
        }
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

/// Data to read: a file or folder, or a registered version (the newest when `version` is nil).
public enum DataSource: Sendable, Hashable {
    case path(String)
    case version(name: String, version: Int64?)

    /// A path when one exists there, else `NAME` or `NAME@VERSION`.
    public static func parse(_ text: String) throws(LoomError) -> DataSource {
        if FileManager.default.fileExists(atPath: text) { return .path(text) }
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard (try? Validate.datasetName(parts[0])) != nil else { throw .notFound("No such file or folder: \(text)") }
        guard parts.count == 2 else { return .version(name: parts[0], version: nil) }
        guard let v = Int64(parts[1]), v > 0 else { throw .invalidParameter("Invalid version in \(text): expected NAME@<number>") }
        return .version(name: parts[0], version: v)
    }
}

/// Where a dataset version came from: the operation, its parameters and its inputs.
public struct DatasetLineage: Sendable, Codable, Hashable {
    public struct Input: Sendable, Codable, Hashable {
        public var name: String?
        public var version: Int64?
        public var path: String?
        public var digest: String

        public init(name: String? = nil, version: Int64? = nil, path: String? = nil, digest: String) {
            self.name = name
            self.version = version
            self.path = path
            self.digest = digest
        }
    }
    public var operation: String
    /// The options of a `clean`.
    public var parameters: CleanPlan?
    /// The options of a `split`, and which part this version is.
    public var split: SplitPlan?
    public var part: String?
    /// The fitted steps of a `transform` (what it learned included).
    public var transform: TransformPlan?
    public var inputs: [Input]

    public init(operation: String, parameters: CleanPlan? = nil, split: SplitPlan? = nil, part: String? = nil, transform: TransformPlan? = nil, inputs: [Input]) {
        self.operation = operation
        self.parameters = parameters
        self.transform = transform
        self.split = split
        self.part = part
        self.inputs = inputs
    }
}

extension TrackingService {
    /// The files of a data source: a path's, or a registered version's copy in the artifact
    /// store (its source when registered by reference). Also what lineage records of it (the
    /// digest of a path is known once it has been read).
    public func files(of source: DataSource, workspace: String? = nil) async throws -> (files: [TableFile], input: DatasetLineage.Input, version: DatasetVersion?) {
        switch source {
        case .path(let p):
            return (try TableFiles.list(p), .init(path: URL(fileURLWithPath: p).standardizedFileURL.path, digest: ""), nil)
        case .version(let name, let number):
            let v = try await datasetVersion(name: name, version: number, workspace: workspace)
            guard v.format != "mlflow" else {
                throw LoomError.invalidState("\(v.name) version \(v.version) was logged by an MLflow run; Loom holds no copy of its data")
            }
            let path: String
            if let stored = v.storagePath {
                if let local = artifacts as? LocalArtifactStore {
                    path = (local.root as NSString).appendingPathComponent(stored)
                } else {
                    // A remote store: a local copy, kept by digest so that it is fetched once.
                    path = try await localCopy(try ArtifactPath(stored), key: v.digest)
                }
            } else {
                path = v.source
            }
            return (try TableFiles.list(path), .init(name: v.name, version: v.version, digest: v.digest), v)
        }
    }

    /// Cleans a table (`CleanPlan`) into a new version of dataset `name`, with lineage to its input.
    public func cleanDataset(
        _ source: DataSource, plan: CleanPlan, into name: String, description: String? = nil, workspace: String? = nil
    ) async throws -> (registration: DatasetRegistration, report: CleanReport) {
        try Validate.datasetName(name)
        var (files, input, _) = try await self.files(of: source, workspace: workspace)
        var profile: DatasetProfile?
        if plan.needsProfile {
            var statistics = Cleaner.statistics(for: plan)
            input.digest = try TableReader.read(files, into: &statistics).digest
            profile = statistics.gathered
        }
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-clean-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        let output = staging.appendingPathComponent("\(name).csv").path
        var cleaner = Cleaner(plan: plan, output: output, profile: profile)
        let content = try TableReader.read(files, into: &cleaner)
        try cleaner.finish()
        if input.digest.isEmpty { input.digest = content.digest }
        let lineage = DatasetLineage(operation: "clean", parameters: plan, inputs: [input])
        let registration = try await registerDataset(
            name: name, path: output, description: description, sourceType: "operation",
            source: "clean of \(input.name.map { "\($0)@\(input.version ?? 0)" } ?? input.path ?? "")", lineage: lineage, workspace: workspace)
        return (registration, cleaner.report)
    }
}

extension TrackingService {
    /// Splits a table into `<name>-train`, `<name>-validation` and `<name>-test` (parts with a
    /// share of 0 are left out), each a new version with lineage to the input. Two passes: the
    /// first counts rows (per class when stratified) so that each part gets exactly its share.
    public func splitDataset(
        _ source: DataSource, plan: SplitPlan, into name: String, workspace: String? = nil
    ) async throws -> [(part: String, registration: DatasetRegistration)] {
        try plan.check()
        for part in SplitPlan.parts { try Validate.datasetName("\(name)-\(part)") }
        var (files, input, _) = try await self.files(of: source, workspace: workspace)
        var counter = SplitCounter(stratify: plan.stratify)
        let content = try TableReader.read(files, into: &counter)
        if input.digest.isEmpty { input.digest = content.digest }
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-split-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        let shares = [plan.train, plan.validation, plan.test]
        let outputs: [String?] = SplitPlan.parts.enumerated().map { i, part in
            shares[i] > 0 ? staging.appendingPathComponent("\(name)-\(part).csv").path : nil
        }
        var splitter = Splitter(plan: plan, outputs: outputs, counter: counter)
        let second = try TableReader.read(files, into: &splitter)
        try splitter.finish()
        guard second.digest == content.digest else {
            throw LoomError.invalidState("The data changed while it was being split; split it again")
        }
        var results: [(String, DatasetRegistration)] = []
        for (i, part) in SplitPlan.parts.enumerated() {
            guard let path = outputs[i] else { continue }
            let lineage = DatasetLineage(operation: "split", split: plan, part: part, inputs: [input])
            let r = try await registerDataset(
                name: "\(name)-\(part)", path: path, sourceType: "operation",
                source: "split (\(part)) of \(input.name.map { "\($0)@\(input.version ?? 0)" } ?? input.path ?? "")", lineage: lineage, workspace: workspace)
            results.append((part, r))
        }
        return results
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

extension TrackingService {
    /// Transforms a table into a new version of dataset `name`: learning steps are fitted on the
    /// input first (one pass each) unless the plan is already fitted (`--apply`), then every row
    /// goes through the steps into the output. The fitted plan is kept in the version's lineage
    /// and as the artifact `transforms/<name>/<version>/transform.json`.
    public func transformDataset(
        _ source: DataSource, plan: TransformPlan, into name: String, description: String? = nil, workspace: String? = nil
    ) async throws -> (registration: DatasetRegistration, report: Transformer.Report, fitted: TransformPlan) {
        try Validate.datasetName(name)
        try plan.check()
        let (files, firstInput, _) = try await self.files(of: source, workspace: workspace)
        var input = firstInput
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-transform-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        let output = staging.appendingPathComponent("\(name).csv").path
        let (fitted, report, content) = try await DataWork.run { () throws -> (TransformPlan, Transformer.Report, TableContent) in
            let (fitted, first) = try Transformer.fit(plan, files: files)
            var transformer = Transformer(plan: fitted, output: output)
            let content = try TableReader.read(files, into: &transformer)
            try transformer.finish()
            if let first, first.digest != content.digest {
                throw LoomError.invalidState("The data changed while it was being transformed; transform it again")
            }
            return (fitted, transformer.report, content)
        }
        if input.digest.isEmpty { input.digest = content.digest }
        let lineage = DatasetLineage(operation: "transform", transform: fitted, inputs: [input])
        let registration = try await registerDataset(
            name: name, path: output, description: description, sourceType: "operation",
            source: "transform of \(input.name.map { "\($0)@\(input.version ?? 0)" } ?? input.path ?? "")", lineage: lineage, workspace: workspace)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let path = try ArtifactPath("transforms/\(name)/\(registration.version.version)/transform.json")
        _ = try await artifacts.write(path, bytes: try encoder.encode(fitted))
        return (registration, report, fitted)
    }

    /// The fitted transform that made a dataset version, or nil when it was not made by one.
    public func fittedTransform(of version: DatasetVersion) throws -> TransformPlan? {
        guard let text = version.lineage,
            let lineage = try? JSONDecoder().decode(DatasetLineage.self, from: Data(text.utf8)),
            lineage.operation == "transform" else { return nil }
        return lineage.transform
    }
}

extension TrackingService {
    /// A local copy of a stored file or folder of a remote artifact store, under the temporary
    /// folder by `key` (a content digest): fetched once, then reused.
    public func localCopy(_ path: ArtifactPath, key: String) async throws -> String {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("loom-artifact-cache")
        let folder = cache.appendingPathComponent(key.replacingOccurrences(of: "sha256:", with: "").replacingOccurrences(of: "/", with: "_"))
        let target = folder.appendingPathComponent(path.name).path
        if FileManager.default.fileExists(atPath: target) { return target }
        let staging = cache.appendingPathComponent("staging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        let fetched = try await download(path, into: staging.path)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        do {
            try FileManager.default.moveItem(atPath: fetched, toPath: target)
        } catch where FileManager.default.fileExists(atPath: target) {
            // Fetched meanwhile by another caller.
        }
        return target
    }

    /// Copies a stored file or folder (recursively) into `folder`; returns the local path.
    public func download(_ path: ArtifactPath, into folder: String) async throws -> String {
        let target = (folder as NSString).appendingPathComponent(path.name)
        if try await artifacts.fileSize(path) != nil {
            guard FileManager.default.createFile(atPath: target, contents: nil), let handle = FileHandle(forWritingAtPath: target) else {
                throw LoomError.internalError("cannot write \(target)")
            }
            defer { try? handle.close() }
            try await artifacts.read(path, chunkSize: 1 << 20) { buffer in try handle.write(contentsOf: Data(buffer.readableBytesView)) }
            return target
        }
        let entries = try await artifacts.list(path)
        guard !entries.isEmpty else { throw LoomError.notFound("No artifact at '\(path)'") }
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for entry in entries {
            _ = try await download(try path.appending((entry.path as NSString).lastPathComponent), into: target)
        }
        return target
    }
}
