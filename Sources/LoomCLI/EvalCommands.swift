import ArgumentParser
import Foundation
import LoomCore
import LoomGenAI
import NIOHTTP1

/// `loom eval`: evaluations of flows over datasets, with gates for CI (docs/evaluation.md).
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluations: run a flow's variants over a dataset on a server, score the answers, gate the result.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an evaluation spec; prints each variant's scores side by side; exits 1 when a gate fails.",
            discussion: """
                The spec names its flow and its dataset (a JSON Lines file of rows with question, and optionally expected, \
                context, relevant), both relative to the spec. --fail-under takes gates such as groundedness=4.0,hit_rate=0.8 \
                (mean at least the value; also >=, >, <=, <, and metric.p50 / metric.pass_rate).
                """)
        @Option(name: .shortAndLong, help: "The evaluation spec (YAML).") var file: String
        @Option(help: "Gates: metric=threshold,... (replaces the spec's fail_under).") var failUnder: String?
        @Option(help: "Only the first N rows.") var limit: Int?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let text = try FlowCommand.read(file)
            let spec = try EvaluationSpec.parse(yaml: text)
            let folder = URL(fileURLWithPath: file).deletingLastPathComponent()
            guard let flowPath = spec.flow else { throw LoomError.invalidParameter("\(file): flow: names the flow file") }
            guard let datasetPath = spec.dataset else { throw LoomError.invalidParameter("\(file): dataset: names the JSON Lines file of rows") }
            func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder.appendingPathComponent(path).path }
            if let limit, limit < 1 { throw LoomError.invalidParameter("--limit must be 1 or more") }
            let flowText = try FlowCommand.read(resolve(flowPath))
            _ = try FlowSpec.parse(yaml: flowText, file: flowPath)
            let rowsText = try FlowCommand.read(resolve(datasetPath))
            var rows: [Any] = []
            for (i, line) in rowsText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw LoomError.invalidParameter("\(datasetPath), line \(i + 1): not a JSON object")
                }
                rows.append(row)
                if let limit, rows.count >= limit { break }
            }
            let failUnder = failUnder?.trimmingCharacters(in: .whitespaces).isEmpty == false ? failUnder : nil
            if let failUnder { _ = try Gate(parsing: failUnder) }
            var body: [String: Any] = ["spec": text, "flow": flowText, "rows": rows]
            if let failUnder { body["fail_under"] = failUnder }
            let r = try await connection.api().object(.POST, "/api/v1/evaluations/run", json: body)
            let passed = r["passed"] as? Bool ?? false
            if output.json {
                try EndpointCommand.printJSON(r)
            } else {
                Self.print(r)
            }
            if !passed { throw ExitCode(1) }
        }

        static func print(_ r: [String: Any]) {
            let variants = r["variants"] as? [[String: Any]] ?? []
            Swift.print("evaluation \(r["name"] as? String ?? "?"): \(r["rows"] as? Int ?? 0) rows, \(variants.count) variant\(variants.count == 1 ? "" : "s")")
            let metrics = Set(variants.flatMap { ($0["aggregates"] as? [String: Any] ?? [:]).keys }).sorted()
            var table: [[String]] = []
            for m in metrics {
                var line = [m]
                for v in variants {
                    let a = (v["aggregates"] as? [String: Any])?[m] as? [String: Any]
                    let mean = (a?["mean"] as? Double).map { String(format: "%.3f", $0) } ?? "-"
                    let errors = a?["errors"] as? Int ?? 0
                    line.append(errors > 0 ? "\(mean) (\(errors) errors)" : mean)
                }
                table.append(line)
            }
            Output.table(["METRIC"] + variants.map { $0["name"] as? String ?? "?" }, table)
            for v in variants {
                if let failed = v["failed_rows"] as? Int, failed > 0 { Swift.print("\(v["name"] as? String ?? "?"): \(failed) rows failed") }
                for g in v["gates"] as? [[String: Any]] ?? [] {
                    let actual = (g["actual"] as? Double).map { String(format: "%.3f", $0) } ?? "not computed"
                    let statistic = g["statistic"] as? String ?? "mean"
                    let metric = (g["metric"] as? String ?? "?") + (statistic == "mean" || g["metric"] as? String == "failed_rows" ? "" : ".\(statistic)")
                    Swift.print("\(v["name"] as? String ?? "?"): gate \(metric) \(g["op"] as? String ?? "") \(g["threshold"] ?? ""): "
                        + "\(actual) \(g["passed"] as? Bool == true ? "passed" : "FAILED")")
                }
            }
            if let c = r["comparison"] as? [String: Any] {
                Swift.print("per row on \(c["metric"] as? String ?? "?"): \(variants.first?["name"] as? String ?? "a") won \(c["wins_a"] as? Int ?? 0), "
                    + "\(variants.dropFirst().first?["name"] as? String ?? "b") won \(c["wins_b"] as? Int ?? 0), \(c["ties"] as? Int ?? 0) ties")
            }
            Swift.print(r["passed"] as? Bool == true ? "passed" : "FAILED")
        }
    }
}
