import ArgumentParser
import Foundation
import LoomCore
import LoomData
import LoomStore
import LoomTracking

/// `loom datasets ...`.
struct DatasetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets", abstract: "Register, list, show and profile versioned datasets (CSV, TSV, JSON Lines, optionally gzipped).",
        subcommands: [Register.self, List.self, Show.self, Profile.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a file or folder as a version of a dataset.",
            discussion: """
                Reads the data once (content digest, schema, column profile), copies its files into \
                the artifact store under datasets/<name>/<digest>/ and records the version. Content \
                the name already has yields its existing version. Malformed data records nothing.
                """)
        @Argument(help: "A file or folder.") var path: String
        @Option(help: "The dataset's name.") var name: String
        @Option(help: "What the data is.") var description: String?
        @Flag(help: "Record where the data is without copying it into the artifact store.") var reference = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let r = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom datasets register")) {
                try await tracking.registerDataset(name: name, path: path, description: description, copy: !reference)
            }
            await tracking.store.shutdown()
            if output.json { return try Output.json(r.version) }
            let v = r.version
            print(r.created ? "registered \(v.name) version \(v.version)" : "unchanged: \(v.name) version \(v.version) has this content")
            print("digest: \(v.digest)\nrows:   \(v.rowCount ?? 0)\ncolumns: \(r.profile.columns.count)")
            for f in r.profile.findings { print("finding: \(f.kind.rawValue): \(f.message)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List datasets with their newest version.")
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let list = try await tracking.store.listDatasets(workspace: Workspace.defaultName)
            await tracking.store.shutdown()
            if output.json { return try Output.json(list) }
            Output.table(["NAME", "VERSIONS", "LATEST", "FORMAT", "ROWS", "DIGEST", "CREATED"], list.map {
                [$0.name, "\($0.versions)", "\($0.latest.version)", $0.latest.format, $0.latest.rowCount.map(String.init) ?? "-",
                 String($0.latest.digest.prefix(19)), Output.time($0.latest.creationTime)]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a dataset's versions, or one version.")
        @Argument(help: "NAME, or NAME@VERSION for one version.") var dataset: String
        @Option(help: "The version (default: list them all).") var version: Int64?
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (name, atVersion) = try DatasetsCommand.reference(dataset)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            if let v = version ?? atVersion {
                let found = try await tracking.datasetVersion(name: name, version: v)
                if output.json { return try Output.json(found) }
                DatasetsCommand.printVersion(found)
                return
            }
            let versions = try await tracking.store.datasetVersions(name: name, workspace: Workspace.defaultName)
            guard !versions.isEmpty else { throw LoomError.notFound("No dataset named \(name)") }
            if output.json { return try Output.json(versions) }
            Output.table(["VERSION", "FORMAT", "ROWS", "SIZE", "DIGEST", "SOURCE", "CREATED", "BY"], versions.map {
                ["\($0.version)", $0.format, $0.rowCount.map(String.init) ?? "-", $0.sizeBytes.map(String.init) ?? "-",
                 String($0.digest.prefix(19)), $0.source, Output.time($0.creationTime), $0.createdBy]
            })
        }
    }

    struct Profile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a file or folder once and print its digest, schema and column profile.",
            discussion: """
                Streams the data: memory stays bounded whatever the size. A folder's table files \
                (.csv, .tsv, .jsonl, .ndjson, each optionally .gz) are read in path order and must \
                share their columns. Malformed input (ragged rows, bad quoting, invalid UTF-8, bad \
                JSON, truncated gzip) is an error naming the file and line.
                """)
        @Argument(help: "A file or folder; or NAME or NAME@VERSION of a registered dataset (its stored profile).") var path: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            if FileManager.default.fileExists(atPath: path) {
                let report = try DatasetsCommand.profile(path)
                if output.json { return try Output.json(report) }
                return DatasetsCommand.printProfile(report)
            }
            guard (try? DatasetsCommand.reference(path)) != nil else { throw LoomError.notFound("No such file or folder: \(path)") }
            let (name, version) = try DatasetsCommand.reference(path)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let v = try await tracking.datasetVersion(name: name, version: version)
            await tracking.store.shutdown()
            guard v.format != "mlflow", let json = v.profile,
                let profile = try? JSONDecoder().decode(DatasetProfile.self, from: Data(json.utf8)) else {
                throw LoomError.notFound("\(v.name) version \(v.version) was logged by an MLflow run; Loom holds no profile of it")
            }
            let content = TableContent(digest: v.digest, size: v.sizeBytes ?? 0, format: TableFormat(rawValue: v.format) ?? .csv, files: [])
            let report = Report(path: "\(v.name)@\(v.version)", content: content, profile: profile)
            if output.json { return try Output.json(report) }
            DatasetsCommand.printProfile(report)
        }
    }

    /// `NAME` or `NAME@VERSION`.
    static func reference(_ text: String) throws(LoomError) -> (name: String, version: Int64?) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        try Validate.datasetName(parts[0])
        guard parts.count == 2 else { return (parts[0], nil) }
        guard let v = Int64(parts[1]), v > 0 else { throw .invalidParameter("Invalid version in \(text): expected NAME@<number>") }
        return (parts[0], v)
    }

    static func printVersion(_ v: DatasetVersion) {
        print("""
            name:        \(v.name)
            version:     \(v.version)
            digest:      \(v.digest)
            format:      \(v.format)
            rows:        \(v.rowCount.map(String.init) ?? "-")
            size:        \(v.sizeBytes.map { "\($0) bytes" } ?? "-")
            source:      \(v.sourceType) \(v.source)
            stored at:   \(v.storagePath ?? "- (referenced only)")
            created:     \(Output.time(v.creationTime)) by \(v.createdBy)
            """)
        if let d = v.description { print("description: \(d)") }
        if let schema = v.schema, v.format != "mlflow",
            let s = try? JSONDecoder().decode(DatasetSchema.self, from: Data(schema.utf8)) {
            print("columns:     " + s.columns.map { "\($0.name) (\($0.type.rawValue))" }.joined(separator: ", "))
        }
    }

    struct Report: Encodable {
        var path: String
        var content: TableContent
        var profile: DatasetProfile
    }

    static func profile(_ path: String) throws -> Report {
        let files = try TableFiles.list(path)
        var profiler = Profiler()
        let content = try TableReader.read(files, into: &profiler)
        return Report(path: path, content: content, profile: profiler.profile())
    }

    static func printProfile(_ r: Report) {
        let p = r.profile
        let files = r.content.files.count > 1 ? ", \(r.content.files.count) files" : ""
        print("\(r.path): \(r.content.format.rawValue)\(files), \(p.rows) rows, \(p.columns.count) columns, \(r.content.size) bytes")
        print("digest: \(r.content.digest)\n")
        Output.table(
            ["COLUMN", "TYPE", "COUNT", "NULLS", "DISTINCT", "MIN", "MEAN", "STD", "MAX", "TOP"],
            p.columns.map { c in
                [
                    c.name, c.type.rawValue, "\(c.count)", "\(c.nulls)", (c.distinctApproximate ? "~" : "") + "\(c.distinct)",
                    number(c.min), number(c.mean), number(c.std), number(c.max),
                    (c.top ?? []).prefix(3).map { "\(display($0.value)) (\($0.count))" }.joined(separator: ", "),
                ]
            })
        if !p.findings.isEmpty {
            print("\nfindings:")
            for f in p.findings { print("- \(f.kind.rawValue): \(f.message)") }
        }
    }

    /// A value on one line of a table: line breaks and tabs escaped, long text cut.
    static func display(_ s: String) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t")
        return flat.count > 30 ? flat.prefix(29) + "…" : flat
    }

    static func number(_ v: Double?) -> String {
        guard let v else { return "-" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.6g", v)
    }
}
