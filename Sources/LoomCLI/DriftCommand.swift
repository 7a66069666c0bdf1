import ArgumentParser
import Foundation
import LoomCore
import LoomData
import LoomMonitoring

/// `loom drift`: data drift between two tables, without a server.
struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare a current table with a reference one: per-column drift and dataset drift.",
        discussion: """
            Evidently's default rules (docs/monitoring.md): numerical columns by two-sample K-S when \
            the reference has at most 1,000 rows, else by normalized Wasserstein distance (0.1); \
            categorical ones by chi-square or a Z-test for small references, else Jensen-Shannon \
            distance (0.1); dataset drift when at least --drift-share of the columns drifted. \
            Methods by name: ks, chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, \
            tvd, anderson, cramer_von_mises. Reads CSV and JSON Lines files or folders of them.
            """)

    @Option(help: "The reference table (a file or folder).") var reference: String
    @Option(help: "The current table (a file or folder).") var current: String
    @Option(help: "How the reference is stored: table (CSV, JSON Lines) or collected (an endpoint's collected requests).") var referenceFormat: Format = .table
    @Option(help: "How the current data is stored: table, or collected (a folder of an endpoint's collection files, e.g. DATA/artifacts/collected/default/churn).")
    var currentFormat: Format = .table
    @Option(name: .customLong("json"), help: "Write the result as JSON to this file ('-': standard output).") var jsonPath: String?
    @Option(name: .customLong("html"), help: "Write a self-contained HTML report to this file.") var htmlPath: String?
    @Option(parsing: .upToNextOption, help: "Only these columns.") var columns: [String] = []
    @Option(name: .customLong("method"), parsing: .singleValue, help: "A column's method: COLUMN=METHOD (repeatable).") var methods: [String] = []
    @Option(name: .customLong("threshold"), parsing: .singleValue, help: "A column's threshold: COLUMN=VALUE (repeatable).") var thresholds: [String] = []
    @Option(help: "The method of every numerical column without its own.") var numericalMethod: String?
    @Option(help: "The method of every categorical column without its own.") var categoricalMethod: String?
    @Option(parsing: .upToNextOption, help: "Columns to treat as numerical.") var numerical: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to treat as categorical.") var categorical: [String] = []
    @Option(help: "Dataset drift when at least this share of the columns drifted.") var driftShare: Double = 0.5
    @Option(help: "Data quality: the largest share of missing values a column may have (Azure ML's default: 0).") var maxNullRate: Double = 0
    @Option(help: "Data quality: the largest share of values of the wrong type.") var maxTypeErrorRate: Double = 0
    @Option(help: "Data quality: the largest share of values outside the reference's range or categories.") var maxOutOfRangeRate: Double = 0
    @Flag(help: "Exit with 1 when the dataset drifted.") var failOnDrift = false

    func run() async throws {
        var options = DriftOptions()
        options.driftShare = driftShare
        options.columns = columns.isEmpty ? nil : columns
        for pair in methods {
            let (column, value) = try Self.split(pair, "--method")
            options.methods[column] = try Self.method(value)
        }
        for pair in thresholds {
            let (column, value) = try Self.split(pair, "--threshold")
            guard let t = Double(value) else { throw LoomError.invalidParameter("--threshold \(pair): \(value) is not a number") }
            options.thresholds[column] = t
        }
        options.numericalMethod = try numericalMethod.map(Self.method)
        options.categoricalMethod = try categoricalMethod.map(Self.method)
        for c in numerical { options.kinds[c] = .numerical }
        for c in categorical { options.kinds[c] = .categorical }
        for path in [reference, current] where !FileManager.default.fileExists(atPath: path) {
            throw LoomError.notFound("No such file or folder: \(path)")
        }
        for (flag, value) in [("--max-null-rate", maxNullRate), ("--max-type-error-rate", maxTypeErrorRate), ("--max-out-of-range-rate", maxOutOfRangeRate)]
        where !(0...1).contains(value) {
            throw LoomError.invalidParameter("\(flag) must be between 0 and 1")
        }
        let thresholds = DataQuality.Thresholds(nullRate: maxNullRate, typeErrorRate: maxTypeErrorRate, outOfRangeRate: maxOutOfRangeRate)
        let (reference, current, settings) = (self.reference, self.current, options)
        let (result, quality) = try await DataWork.run { () throws -> (DriftResult, DataQuality.Result) in
            let (ref, cur) = try Self.read(reference, referenceFormat, current, currentFormat)
            guard ref.rowCount > 0 else { throw LoomError.invalidParameter("the reference data has no rows") }
            guard cur.rowCount > 0 else { throw LoomError.invalidParameter("the current data has no rows") }
            let drift = try DriftAnalysis.run(reference: ref, current: cur, options: settings)
            return (drift, DataQuality.run(reference: ref, current: cur, thresholds: thresholds, columns: settings.columns, kinds: settings.kinds))
        }
        let json = try DriftReport.json(result, quality: quality, reference: reference, current: current)
        if jsonPath == "-" {
            print(String(decoding: json, as: UTF8.self))
        } else {
            if let jsonPath { try Self.write(json, to: jsonPath) }
            Self.printTable(result)
            print(DriftReport.summary(quality))
        }
        if let htmlPath {
            try Self.write(Data(DriftReport.html(result, quality: quality, reference: reference, current: current).utf8), to: htmlPath)
        }
        if failOnDrift, result.datasetDrifted { throw ExitCode.failure }
    }

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, collected
    }

    /// The two tables, read at once when both are tables.
    static func read(_ reference: String, _ rf: Format, _ current: String, _ cf: Format) throws -> (DriftTable, DriftTable) {
        if rf == .table, cf == .table { return try DriftTable.read(reference, current) }
        func one(_ path: String, _ format: Format) throws -> DriftTable {
            guard format == .collected else { return try DriftTable.read(path: path) }
            var window = try CollectedWindow.read(folder: path)
            guard window.used > 0 else {
                throw LoomError.invalidParameter("\(path) has no collected answers to compare (\(window.records) records, \(window.malformed) malformed)")
            }
            return window.table()
        }
        return (try one(reference, rf), try one(current, cf))
    }

    static func printTable(_ r: DriftResult) {
        Output.table(
            ["COLUMN", "TYPE", "METHOD", "SCORE", "THRESHOLD", "DRIFT"],
            r.columns.map { [$0.name, $0.type.rawValue, $0.method.rawValue, DriftReport.score($0.score), DriftReport.score($0.threshold), $0.drifted ? "drifted" : "-"] })
        print("")
        print(DriftReport.summary(r))
        for f in r.findings { print("note: \(f.message)") }
    }

    static func split(_ pair: String, _ flag: String) throws(LoomError) -> (String, String) {
        guard let eq = pair.lastIndex(of: "="), eq != pair.startIndex else {
            throw LoomError.invalidParameter("\(flag) \(pair): expected COLUMN=VALUE")
        }
        return (String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
    }

    static func method(_ name: String) throws(LoomError) -> DriftMethod {
        guard let m = DriftMethod(rawValue: name) else {
            throw LoomError.invalidParameter("unknown drift method \(name); one of \(DriftMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return m
    }

    static func write(_ data: Data, to path: String) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path))
        } catch {
            throw LoomError.invalidParameter("cannot write \(path): \(error.localizedDescription)")
        }
    }
}
