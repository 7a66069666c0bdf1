import ArgumentParser
import Foundation
import LoomCore
import LoomData

/// `loom datasets ...`.
struct DatasetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets", abstract: "Profile tabular data (CSV, TSV, JSON Lines, optionally gzipped).",
        subcommands: [Profile.self])

    struct Profile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a file or folder once and print its digest, schema and column profile.",
            discussion: """
                Streams the data: memory stays bounded whatever the size. A folder's table files \
                (.csv, .tsv, .jsonl, .ndjson, each optionally .gz) are read in path order and must \
                share their columns. Malformed input (ragged rows, bad quoting, invalid UTF-8, bad \
                JSON, truncated gzip) is an error naming the file and line.
                """)
        @Argument(help: "A file or folder.") var path: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let report = try DatasetsCommand.profile(path)
            if output.json { return try Output.json(report) }
            DatasetsCommand.printProfile(report)
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
        let files = r.content.files.count == 1 ? "" : ", \(r.content.files.count) files"
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
