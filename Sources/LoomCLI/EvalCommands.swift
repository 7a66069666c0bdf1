import ArgumentParser
import Foundation
import LoomCore
import LoomGenAI
import NIOHTTP1

/// `loom eval`: evaluations of flows over datasets, with gates for CI (docs/evaluation.md).
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluations: run a flow's variants over a dataset on a server, score the answers, gate the result; list, show, compare and resume stored runs.",
        subcommands: [Run.self, List.self, Show.self, Diff.self, Resume.self, Delete.self])

    /// Waits for a run the server runs in the background (printing its progress to stderr),
    /// then prints its report; exits 1 when a gate failed or the run failed.
    static func follow(_ id: String, api: ServerAPI, json: Bool) async throws {
        var lastDone = -1
        var view: [String: Any] = [:]
        let started = ContinuousClock.now
        var lastPrint = started
        while true {
            view = try await api.object(.GET, "/api/v1/evaluations/\(ServerAPI.escape(id))?rows=false")
            let status = view["status"] as? String ?? "?"
            if status != "running" { break }
            let done = view["rows_done"] as? Int ?? 0
            if done != lastDone, ContinuousClock.now - lastPrint >= .seconds(2) {
                FileHandle.standardError.write(Data("run \(id): \(done) rows done\n".utf8))
                lastPrint = ContinuousClock.now
                lastDone = done
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        let full = try await api.object(.GET, "/api/v1/evaluations/\(ServerAPI.escape(id))")
        let status = full["status"] as? String ?? "?"
        if json {
            // The report (it carries the run's id and status), as `POST /api/v1/evaluations/run` answers it.
            try EndpointCommand.printJSON(full["report"] as? [String: Any] ?? full)
        } else if let report = full["report"] as? [String: Any] {
            Run.print(report)
        }
        if status == "failed" { throw LoomError.invalidState("evaluation run \(id) failed: \(full["error"] as? String ?? "?"); resume it with `loom eval resume \(id)`") }
        if status == "interrupted" { throw LoomError.invalidState("evaluation run \(id) was interrupted; resume it with `loom eval resume \(id)`") }
        if (full["report"] as? [String: Any])?["passed"] as? Bool != true { throw ExitCode(1) }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an evaluation spec; prints each variant's scores side by side; exits 1 when a gate fails.",
            discussion: """
                The spec names its flow (a YAML file relative to the spec, or a stored flow NAME[@VERSION]) and its dataset \
                (a JSON Lines file of rows with question, and optionally expected, context, relevant, relative to the spec; or a \
                registered dataset NAME[@VERSION]). --fail-under takes gates such as groundedness=4.0,hit_rate=0.8 (mean at least \
                the value; also >=, >, <=, <, and metric.p50 / metric.pass_rate). The run is stored as its rows finish: \
                `loom eval resume ID` finishes one that stopped.
                """)
        @Option(name: .shortAndLong, help: "The evaluation spec (YAML).") var file: String
        @Option(help: "Gates: metric=threshold,... (replaces the spec's fail_under).") var failUnder: String?
        @Option(help: "Only the first N rows.") var limit: Int?
        @Option(help: "A registered dataset NAME[@VERSION] (replaces the spec's dataset).") var dataset: String?
        @Option(help: "A stored flow NAME[@VERSION] (replaces the spec's flow).") var flow: String?
        @Flag(help: "Start the run and print its id without waiting for it.") var detach = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let text = try FlowCommand.read(file)
            let spec = try EvaluationSpec.parse(yaml: text)
            let folder = URL(fileURLWithPath: file).deletingLastPathComponent()
            func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder.appendingPathComponent(path).path }
            if let limit, limit < 1 { throw LoomError.invalidParameter("--limit must be 1 or more") }
            var body: [String: Any] = ["spec": text, "wait": false]
            // The flow: a file next to the spec, else a stored flow's name.
            guard let flowName = flow ?? spec.flow else { throw LoomError.invalidParameter("\(file): flow: names the flow file or a stored flow") }
            if flow == nil, FileManager.default.fileExists(atPath: resolve(flowName)) {
                let flowText = try FlowCommand.read(resolve(flowName))
                _ = try FlowSpec.parse(yaml: flowText, file: flowName)
                body["flow"] = flowText
            } else {
                body["flow"] = flowName
            }
            // The rows: a JSON Lines file next to the spec, else a registered dataset.
            guard let datasetName = dataset ?? spec.dataset else {
                throw LoomError.invalidParameter("\(file): dataset: names the JSON Lines file of rows or a registered dataset")
            }
            if dataset == nil, FileManager.default.fileExists(atPath: resolve(datasetName)) {
                let rowsText = try FlowCommand.read(resolve(datasetName))
                var rows: [Any] = []
                for (i, line) in rowsText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    guard let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                        throw LoomError.invalidParameter("\(datasetName), line \(i + 1): not a JSON object")
                    }
                    rows.append(row)
                    if let limit, rows.count >= limit { break }
                }
                body["rows"] = rows
            } else {
                guard limit == nil else { throw LoomError.invalidParameter("--limit applies to a dataset file; a registered dataset's rows are all run") }
                body["dataset"] = datasetName
            }
            let failUnder = failUnder?.trimmingCharacters(in: .whitespaces).isEmpty == false ? failUnder : nil
            if let failUnder {
                _ = try Gate(parsing: failUnder)
                body["fail_under"] = failUnder
            }
            let api = try connection.api()
            let started = try await api.object(.POST, "/api/v1/evaluations/run", json: body)
            guard let id = started["id"] as? String else { throw LoomError.unavailable("the server did not answer with a run id") }
            if detach {
                if output.json { return try EndpointCommand.printJSON(started) }
                return Swift.print("evaluation run \(id) started; follow it with `loom eval show \(id)`")
            }
            FileHandle.standardError.write(Data("evaluation run \(id)\n".utf8))
            try await EvalCommand.follow(id, api: api, json: output.json)
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List evaluation runs, newest first.")
        @Option(help: "Only runs of this evaluation spec name.") var name: String?
        @Option(help: "At most this many.") var limit = 50
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var path = "/api/v1/evaluations?max_results=\(limit)"
            if let name { path += "&name=\(name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name)" }
            let r = try await connection.api().object(.GET, path)
            if output.json { return try EndpointCommand.printJSON(r) }
            let runs = r["runs"] as? [[String: Any]] ?? []
            Output.table(["ID", "NAME", "STATUS", "ROWS", "FLOW", "DATASET", "PASSED", "CREATED"], runs.map { run in
                [run["id"] as? String ?? "", run["name"] as? String ?? "", run["status"] as? String ?? "", "\(run["row_count"] as? Int ?? 0)",
                 run["flow"] as? String ?? "-", run["dataset"] as? String ?? "", (run["passed"] as? Bool).map { $0 ? "yes" : "no" } ?? "-",
                 Output.time((run["creation_time"] as? NSNumber)?.int64Value)]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an evaluation run: its status and its report so far (with --rows, every row's answer and scores).")
        @Argument(help: "The run's id.") var id: String
        @Flag(help: "Print each row's answer and scores.") var rows = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let r = try await connection.api().object(.GET, "/api/v1/evaluations/\(ServerAPI.escape(id))?rows=\(rows || output.json)")
            if output.json { return try EndpointCommand.printJSON(r) }
            Swift.print("run \(r["id"] as? String ?? id): \(r["status"] as? String ?? "?"), \(r["rows_done"] as? Int ?? 0) results for \(r["row_count"] as? Int ?? 0) rows"
                + ", flow \(r["flow"] as? String ?? "inline"), dataset \(r["dataset"] as? String ?? "?")" + ((r["error"] as? String).map { "; error: \($0)" } ?? ""))
            guard let report = r["report"] as? [String: Any] else { return }
            Run.print(report)
            guard rows else { return }
            for v in report["variants"] as? [[String: Any]] ?? [] {
                Swift.print("\nvariant \(v["name"] as? String ?? "?")")
                Output.table(["ROW", "QUESTION", "ANSWER", "SCORES", "ERROR"], (v["rows"] as? [[String: Any]] ?? []).map { row in
                    let scores = (row["scores"] as? [[String: Any]] ?? []).map { s in
                        "\(s["name"] as? String ?? "?")=" + ((s["score"] as? Double).map { String(format: "%.3g", $0) } ?? "err")
                    }
                    return ["\(row["row"] as? Int ?? 0)", Diff.clip(row["question"] as? String ?? "", 40), Diff.clip(row["answer"] as? String ?? "", 50),
                            scores.joined(separator: " "), Diff.clip(row["error"] as? String ?? "", 40)]
                })
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two variants of a run row by row: answers and scores side by side, the largest differences first.")
        @Argument(help: "The run's id.") var id: String
        @Option(help: "The first variant (default: the first).") var a: String?
        @Option(help: "The second variant (default: the next).") var b: String?
        @Option(help: "The evaluator whose scores decide (default: the spec's first).") var metric: String?
        @Flag(help: "Only rows whose answers or scores differ.") var changed = false
        @Option(help: "At most this many rows.") var limit = 20
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        static func clip(_ text: String, _ n: Int) -> String {
            let one = text.replacingOccurrences(of: "\n", with: " ")
            return one.count <= n ? one : String(one.prefix(n - 1)) + "…"
        }

        func run() async throws {
            var query = ["max_results=\(limit)", "changed=\(changed)"]
            for (k, v) in [("a", a), ("b", b), ("metric", metric)] {
                if let v { query.append("\(k)=\(v.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? v)") }
            }
            let r = try await connection.api().object(.GET, "/api/v1/evaluations/\(ServerAPI.escape(id))/diff?" + query.joined(separator: "&"))
            if output.json { return try EndpointCommand.printJSON(r) }
            let na = r["a"] as? String ?? "a"
            let nb = r["b"] as? String ?? "b"
            Swift.print("\(r["metric"] as? String ?? "?"): \(na) won \(r["wins_a"] as? Int ?? 0), \(nb) won \(r["wins_b"] as? Int ?? 0), \(r["ties"] as? Int ?? 0) ties")
            func score(_ side: [String: Any]?) -> String {
                if let s = side?["score"] as? Double { return String(format: "%.3g", s) }
                return side?["error"] != nil ? "error" : "-"
            }
            Output.table(["ROW", "QUESTION", na.uppercased(), "SCORE", nb.uppercased(), "SCORE", "WINNER"], (r["rows"] as? [[String: Any]] ?? []).map { e in
                let sa = e["a"] as? [String: Any]
                let sb = e["b"] as? [String: Any]
                return ["\(e["row"] as? Int ?? 0)", Self.clip(e["question"] as? String ?? "", 36), Self.clip(sa?["answer"] as? String ?? "", 40), score(sa),
                        Self.clip(sb?["answer"] as? String ?? "", 40), score(sb), e["winner"] as? String ?? ""]
            })
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume an evaluation run that stopped: runs only the rows it lacks (with --retry-failed, also those that failed).")
        @Argument(help: "The run's id.") var id: String
        @Flag(help: "Run the rows that failed again too.") var retryFailed = false
        @Flag(help: "Take the run over although its heartbeat is fresh (its server is known to be gone).") var force = false
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try connection.api()
            _ = try await api.object(
                .POST, "/api/v1/evaluations/\(ServerAPI.escape(id))/resume", json: ["retry_failed": retryFailed, "force": force, "wait": false])
            try await EvalCommand.follow(id, api: api, json: output.json)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an evaluation run with its rows.")
        @Argument(help: "The run's id.") var id: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().call(.DELETE, "/api/v1/evaluations/\(ServerAPI.escape(id))")
            Swift.print("deleted evaluation run \(id)")
        }
    }
}
