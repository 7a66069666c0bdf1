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
        subcommands: [Register.self, List.self, Show.self, Profile.self, ValidateData.self, Clean.self, Transform.self, Split.self])

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
                let path = self.path
                let report = try await DataWork.run { try DatasetsCommand.profile(path) }
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

    struct ValidateData: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Check data against declarative expectations (YAML); exits 1 when any fails.",
            discussion: """
                Rules: not_null, unique, range (min/max), allowed_values (values), regex (pattern), \
                row_count (min/max), schema (columns: {name: type}, exact), freshness (max_age, \
                e.g. 24h). Each may have a name and mostly (the share of values that must pass). \
                A failure names the rule, the column, the count and sample rows. See docs/datasets.md.
                """)
        @Argument(help: "A file or folder; or NAME or NAME@VERSION of a registered dataset.") var data: String
        @Option(name: .shortAndLong, help: "The expectations file (YAML).") var expectations: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let text: String
            do { text = try String(contentsOfFile: expectations, encoding: .utf8) } catch {
                throw LoomError.notFound("Cannot read the expectations file \(expectations)")
            }
            let suite = try ExpectationSuite.parse(yaml: text)
            let (files, label) = try await DatasetsCommand.resolve(data, storage)
            let report = try await DataWork.run { try ParallelValidate.run(files, suite: suite) }
            if output.json {
                try Output.json(report)
            } else {
                DatasetsCommand.printValidation(report, label)
            }
            if !report.passed { throw ExitCode.failure }
        }
    }

    /// The files of a path, or of a registered version (its copy in the artifact store, or its
    /// source when it was registered by reference).
    static func resolve(_ argument: String, _ storage: StoreOptions) async throws -> (files: [TableFile], label: String) {
        let source = try DataSource.parse(argument)
        if case .path(let p) = source { return (try TableFiles.list(p), p) }
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let (files, input, _) = try await tracking.files(of: source)
        await tracking.store.shutdown()
        return (files, "\(input.name ?? argument)@\(input.version ?? 0)")
    }

    static func printValidation(_ r: ValidationReport, _ label: String) {
        let failed = r.results.filter { !$0.passed }.count
        print("\(label): \(r.rows) rows, \(r.results.count) expectations, \(failed == 0 ? "all passed" : "\(failed) failed")\n")
        Output.table(["RESULT", "EXPECTATION", "CHECKED", "FAILED", "DETAIL"], r.results.map {
            [$0.passed ? "pass" : "FAIL", $0.name, "\($0.checked)", "\($0.failures)", $0.message ?? ""]
        })
        for result in r.results where !result.passed && !result.samples.isEmpty {
            print("\nsample rows failing \(result.name):")
            for s in result.samples {
                let values = s.values.keys.sorted().map { "\($0)=\(s.values[$0]!.map { display($0) } ?? "null")" }.joined(separator: " ")
                print("  \(s.file) line \(s.line): \(values)")
            }
        }
    }

    struct Clean: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clean data into a new version of a dataset, with lineage to its input.",
            discussion: """
                Applied to each row in this order: --trim, --cast, --impute, --drop-missing, \
                --dedupe, --drop-columns. The output is CSV, registered as a version of --name \
                whose lineage records the input (file digest or NAME@VERSION) and these options.
                """)
        @Argument(help: "A file or folder; or NAME or NAME@VERSION of a registered dataset.") var data: String
        @Option(help: "The dataset the result becomes a version of.") var name: String
        @Option(help: "What the result is.") var description: String?
        @Flag(help: "Strip spaces and tabs around every value (a value left empty is missing).") var trim = false
        @Option(help: ArgumentHelp("COLUMN=TYPE (integer, number, boolean, string); values that do not convert become missing. Repeatable.", valueName: "column=type")) var cast: [String] = []
        @Option(help: ArgumentHelp("COLUMN=HOW: mean, median, mode or constant:VALUE. Repeatable.", valueName: "column=how")) var impute: [String] = []
        @Option(help: ArgumentHelp("Drop rows missing a value in these columns (comma-separated; * for any column).", valueName: "columns")) var dropMissing: String?
        @Option(help: ArgumentHelp("Keep the first of rows equal on these columns (comma-separated; * for all).", valueName: "columns")) var dedupe: String?
        @Option(help: ArgumentHelp("Columns to leave out (comma-separated).", valueName: "columns")) var dropColumns: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func plan() throws -> CleanPlan {
            var plan = CleanPlan()
            plan.trim = trim
            for item in cast {
                let (column, value) = try DatasetsCommand.pair(item, "--cast")
                guard let type = ColumnType(rawValue: value), type != .empty else {
                    throw LoomError.invalidParameter("--cast \(item): the type must be integer, number, boolean or string")
                }
                plan.cast[column] = type
            }
            for item in impute {
                let (column, value) = try DatasetsCommand.pair(item, "--impute")
                plan.impute[column] = try CleanPlan.imputation(value)
            }
            plan.dropMissing = DatasetsCommand.list(dropMissing)
            plan.dedupe = DatasetsCommand.list(dedupe)
            plan.dropColumns = DatasetsCommand.list(dropColumns)
            return plan
        }

        func run() async throws {
            let plan = try plan()
            let source = try DataSource.parse(data)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let (registration, report) = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom datasets clean")) {
                try await tracking.cleanDataset(source, plan: plan, into: name, description: description)
            }
            await tracking.store.shutdown()
            if output.json {
                struct Result: Encodable { let version: DatasetVersion; let report: CleanReport }
                return try Output.json(Result(version: registration.version, report: report))
            }
            let v = registration.version
            print(registration.created ? "registered \(v.name) version \(v.version)" : "unchanged: \(v.name) version \(v.version) has this content")
            print("rows: \(report.rowsIn) in, \(report.rowsOut) out (\(report.droppedMissing) with missing values, \(report.droppedDuplicates) duplicates dropped)")
            for (c, n) in report.imputed.sorted(by: { $0.key < $1.key }) { print("imputed: \(c): \(n) values") }
            for (c, n) in report.castFailures.sorted(by: { $0.key < $1.key }) { print("cast: \(c): \(n) values did not convert and became missing") }
            print("digest: \(v.digest)")
        }
    }

    struct Transform: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Transform data (filter, derive, select, one-hot, standardize, normalize) into a new version of a dataset.",
            discussion: """
                Steps come from -f (a YAML list, applied in its order) or from the flags, applied \
                in this order: --filter, --derive, --select, --drop, --one-hot, --standardize, \
                --normalize. One-hot categories, means and ranges are learned from the input \
                (one pass per learning step) and kept with the output version (lineage, and the \
                artifact transforms/<name>/<version>/transform.json); --apply reuses what another \
                version learned instead, as at inference. See docs/datasets.md.
                """)
        @Argument(help: "A file or folder; or NAME or NAME@VERSION of a registered dataset.") var data: String
        @Option(help: "The dataset the result becomes a version of.") var name: String
        @Option(help: "What the result is.") var description: String?
        @Option(name: [.customShort("f"), .customLong("file")], help: "A YAML file of steps.") var file: String?
        @Option(help: ArgumentHelp("Keep the rows for which this expression is true.", valueName: "expression")) var filter: String?
        @Option(help: ArgumentHelp("NAME=EXPRESSION: add or replace a column. Repeatable.", valueName: "name=expression")) var derive: [String] = []
        @Option(help: ArgumentHelp("Keep these columns, in this order (comma-separated).", valueName: "columns")) var select: String?
        @Option(help: ArgumentHelp("Remove these columns (comma-separated).", valueName: "columns")) var drop: String?
        @Option(name: .customLong("one-hot"), help: ArgumentHelp("One 0/1 column per category of these columns (comma-separated).", valueName: "columns")) var oneHot: String?
        @Option(name: .customLong("max-categories"), help: "One-hot: categories per column at most (the most frequent).") var maxCategories: Int?
        @Option(help: ArgumentHelp("(x - mean) / std for these columns (comma-separated).", valueName: "columns")) var standardize: String?
        @Option(help: ArgumentHelp("(x - min) / (max - min) for these columns (comma-separated).", valueName: "columns")) var normalize: String?
        @Option(help: ArgumentHelp("Apply the fitted transform of a version (NAME@VERSION) or a transform.json file, learning nothing.", valueName: "version|file")) var apply: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func plan() throws -> TransformPlan? {
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw LoomError.notFound("Cannot read \(file)") }
                return try TransformPlan.parse(yaml: text)
            }
            var steps: [TransformPlan.Step] = []
            if let filter { steps.append(.init(kind: .filter, expression: filter)) }
            if !derive.isEmpty {
                var derived: [TransformPlan.Derived] = []
                for item in derive {
                    let (name, expression) = try DatasetsCommand.pair(item, "--derive")
                    derived.append(TransformPlan.Derived(name: name.trimmingCharacters(in: .whitespaces), expression: expression))
                }
                steps.append(.init(kind: .derive, derived: derived))
            }
            if let select { steps.append(.init(kind: .select, columns: DatasetsCommand.list(select))) }
            if let drop { steps.append(.init(kind: .drop, columns: DatasetsCommand.list(drop))) }
            if let oneHot { steps.append(.init(kind: .oneHot, columns: DatasetsCommand.list(oneHot), maxCategories: maxCategories)) }
            if let standardize { steps.append(.init(kind: .standardize, columns: DatasetsCommand.list(standardize))) }
            if let normalize { steps.append(.init(kind: .normalize, columns: DatasetsCommand.list(normalize))) }
            return steps.isEmpty ? nil : TransformPlan(steps: steps)
        }

        func run() async throws {
            let own = try plan()
            if own != nil, apply != nil { throw LoomError.invalidParameter("--apply reuses a fitted transform: give it without other steps") }
            let source = try DataSource.parse(data)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let result: (registration: TrackingService.DatasetRegistration, report: Transformer.Report, fitted: TransformPlan)
            do {
                let plan: TransformPlan
                if let apply {
                    plan = try await DatasetsCommand.fittedTransform(apply, tracking: tracking)
                } else if let own {
                    plan = own
                } else {
                    throw LoomError.invalidParameter("no steps: give -f FILE, --apply, or step options (--filter, --derive, --select, --drop, --one-hot, --standardize, --normalize)")
                }
                result = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom datasets transform")) {
                    try await tracking.transformDataset(source, plan: plan, into: name, description: description)
                }
            } catch {
                await tracking.store.shutdown()
                throw error
            }
            await tracking.store.shutdown()
            if output.json {
                struct Result: Encodable { let version: DatasetVersion; let report: Transformer.Report; let transform: TransformPlan }
                return try Output.json(Result(version: result.registration.version, report: result.report, transform: result.fitted))
            }
            let v = result.registration.version
            print(result.registration.created ? "registered \(v.name) version \(v.version)" : "unchanged: \(v.name) version \(v.version) has this content")
            print("rows: \(result.report.rowsIn) in, \(result.report.rowsOut) out")
            print("columns: \(result.report.columns.joined(separator: ", "))")
        }
    }

    /// A fitted transform: a dataset version made by `transform` (NAME@VERSION), or a file.
    static func fittedTransform(_ reference: String, tracking: TrackingService) async throws -> TransformPlan {
        if FileManager.default.fileExists(atPath: reference) {
            guard let data = FileManager.default.contents(atPath: reference),
                let plan = try? JSONDecoder().decode(TransformPlan.self, from: data) else {
                throw LoomError.invalidParameter("\(reference) is not a transform.json file")
            }
            guard plan.isFitted else { throw LoomError.invalidParameter("\(reference) is not fitted") }
            try plan.check()
            return plan
        }
        let (name, version) = try DatasetsCommand.reference(reference)
        let v = try await tracking.datasetVersion(name: name, version: version)
        guard let plan = try tracking.fittedTransform(of: v) else {
            throw LoomError.invalidParameter("\(name)@\(v.version) was not made by a transform")
        }
        return plan
    }

    struct Split: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split data into NAME-train, NAME-validation and NAME-test versions (seeded, optionally stratified).",
            discussion: """
                Each part gets exactly its share of the rows (validation and test rounded, train the \
                rest), chosen at random with --seed; with --stratify, within each class of that \
                column. A part with a share of 0 is not made. Each part records its lineage.
                """)
        @Argument(help: "A file or folder; or NAME or NAME@VERSION of a registered dataset.") var data: String
        @Option(help: "The parts become versions of NAME-train, NAME-validation, NAME-test.") var name: String
        @Option(help: "Share of the rows for training.") var train = 0.8
        @Option(help: "Share for validation.") var validation = 0.1
        @Option(help: "Share for testing.") var test = 0.1
        @Option(help: "Seed of the random assignment.") var seed: UInt64 = 42
        @Option(help: "Keep the classes of this column in the same proportions in every part.") var stratify: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let plan = SplitPlan(train: train, validation: validation, test: test, seed: seed, stratify: stratify)
            try plan.check()
            let source = try DataSource.parse(data)
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let parts = try await AuditContext.$current.withValue(AuditContext(actor: "cli", origin: "loom datasets split")) {
                try await tracking.splitDataset(source, plan: plan, into: name)
            }
            await tracking.store.shutdown()
            if output.json { return try Output.json(parts.map(\.registration.version)) }
            Output.table(["PART", "DATASET", "VERSION", "ROWS", "DIGEST"], parts.map { p in
                let v = p.registration.version
                return [p.part, v.name, "\(v.version)\(p.registration.created ? "" : " (unchanged)")", v.rowCount.map(String.init) ?? "-", String(v.digest.prefix(19))]
            })
        }
    }

    /// `COLUMN=VALUE`.
    static func pair(_ item: String, _ option: String) throws(LoomError) -> (String, String) {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw .invalidParameter("\(option) \(item): expected COLUMN=VALUE")
        }
        return (String(item[..<eq]), String(item[item.index(after: eq)...]))
    }

    /// A comma-separated list (empty when absent).
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
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
        if let json = v.lineage, let l = try? JSONDecoder().decode(DatasetLineage.self, from: Data(json.utf8)) {
            let inputs = l.inputs.map { i in i.name.map { "\($0)@\(i.version ?? 0)" } ?? i.path ?? "?" }.joined(separator: ", ")
            print("made by:     \(l.operation)\(l.part.map { " (\($0))" } ?? "") of \(inputs)")
        }
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
        let (content, profile) = try ParallelProfile.run(files)
        return Report(path: path, content: content, profile: profile)
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
