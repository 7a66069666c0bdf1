import ArgumentParser
import Foundation
import LoomCore
import NIOHTTP1

/// `loom monitor`: monitors over endpoints' collected requests (docs/monitoring.md), through a
/// running server. Specs are applied with `loom apply -f monitor.yaml`.
struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Monitors: run a pass, list them, show one, its results over time and its alerts.",
        discussion: """
            A monitor is a `kind: monitor` spec applied with `loom apply -f monitor.yaml`. These commands act through a \
            running server (--server, default http://127.0.0.1:5000). See docs/monitoring.md.
            """,
        subcommands: [Run.self, List.self, Show.self, Results.self, Alerts.self, Delete.self])

    static func path(_ name: String) -> String { "/api/v1/monitors/" + ServerAPI.escape(name) }

    static func time(_ value: Any?) -> String {
        guard let ms = value as? Int else { return "-" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func number(_ value: Any?) -> String {
        guard let v = value as? Double else { return "-" }
        return String(format: "%.4g", v)
    }

    static func verdict(_ result: [String: Any]) -> String {
        if result["skipped"] as? Bool == true { return "skipped" }
        return result["passed"] as? Bool == true ? "yes" : "NO"
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make one pass of a monitor now: read its window and reference, judge each signal, open or resolve alerts.",
            discussion: "Exit status 1 when a signal fails with --fail-on-alert.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions
        @Flag(help: "Exit with status 1 when a signal failed.") var failOnAlert = false

        func run() async throws {
            let pass = try await connection.api().object(.POST, MonitorCommand.path(name) + "/run")
            if output.json {
                try EndpointCommand.printJSON(pass)
            } else {
                print("monitor \(name): pass \(pass["pass_id"] as? String ?? "?") over \(pass["rows"] as? Int ?? 0) rows "
                    + "(\(MonitorCommand.time(pass["window_start"])) to \(MonitorCommand.time(pass["window_end"]))), reference \(pass["reference"] as? String ?? "?")")
                let results = pass["results"] as? [[String: Any]] ?? []
                Output.table(["SIGNAL", "KIND", "VALUE", "PASSED", "SUMMARY"], results.map { r in
                    [r["signal"] as? String ?? "?", r["kind"] as? String ?? "?", MonitorCommand.number(r["value"]), MonitorCommand.verdict(r),
                     r["summary"] as? String ?? ""]
                })
                for (key, verb) in [("alerts_opened", "opened"), ("alerts_resolved", "resolved")] {
                    for a in pass[key] as? [[String: Any]] ?? [] {
                        print("alert \(verb): \(a["signal"] as? String ?? "?") (\(a["id"] as? String ?? "?"))")
                    }
                }
            }
            if failOnAlert, pass["passed"] as? Bool == false { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's monitors.")
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let items = try await connection.api().object(.GET, "/api/v1/monitors")["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["NAME", "ENDPOINT", "VERSION", "SCHEDULE", "SIGNALS", "NEXT PASS", "OPEN ALERTS"], items.map { m in
                [m["name"] as? String ?? "?", m["endpoint"] as? String ?? "?", "\(m["version"] as? Int ?? 0)", m["schedule"] as? String ?? "on demand",
                 (m["signals"] as? [String] ?? []).joined(separator: ","), MonitorCommand.time(m["next_run_time"]), "\(m["open_alerts"] as? Int ?? 0)"]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a monitor: its spec, schedule and open alerts.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let m = try await connection.api().object(.GET, MonitorCommand.path(name))
            if output.json { return try EndpointCommand.printJSON(m) }
            print("monitor \(m["name"] as? String ?? name) (version \(m["version"] as? Int ?? 0)) on endpoint \(m["endpoint"] as? String ?? "?")")
            print("schedule: \(m["schedule"] as? String ?? "on demand"); next pass \(MonitorCommand.time(m["next_run_time"])); last \(MonitorCommand.time(m["last_run_time"]))")
            print("open alerts: \(m["open_alerts"] as? Int ?? 0)")
            print("")
            print(m["spec"] as? String ?? "")
        }
    }

    struct Results: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A monitor's results over time, newest first.")
        @Argument var name: String
        @Option(help: "One signal's results.") var signal: String?
        @Option(help: "At most this many.") var maxResults = 50
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var path = MonitorCommand.path(name) + "/results?max_results=\(maxResults)"
            if let signal { path += "&signal=" + ServerAPI.escape(signal) }
            let items = try await connection.api().object(.GET, path)["items"] as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["TIME", "SIGNAL", "ROWS", "VALUE", "PASSED", "SUMMARY"], items.map { r in
                [MonitorCommand.time(r["time"]), r["signal"] as? String ?? "?", "\(r["rows"] as? Int ?? 0)", MonitorCommand.number(r["value"]),
                 MonitorCommand.verdict(r), r["summary"] as? String ?? ""]
            })
        }
    }

    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Alerts of one monitor or all, newest first.")
        @Argument(help: "A monitor (default: all of the workspace's).") var name: String?
        @Option(help: "open or resolved.") var state: String?
        @OptionGroup var connection: ServerOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var query: [String] = []
            if let name { query.append("monitor=" + ServerAPI.escape(name)) }
            if let state { query.append("state=" + ServerAPI.escape(state)) }
            let items = try await connection.api().object(.GET, "/api/v1/alerts" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))["items"]
                as? [[String: Any]] ?? []
            if output.json { return try EndpointCommand.printJSON(items) }
            Output.table(["OPENED", "MONITOR", "SIGNAL", "STATE", "PASSES", "SUMMARY"], items.map { a in
                [MonitorCommand.time(a["opened_time"]), a["monitor"] as? String ?? "?", a["signal"] as? String ?? "?", a["state"] as? String ?? "?",
                 "\(a["passes"] as? Int ?? 0)", a["summary"] as? String ?? ""]
            })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a monitor with its results and alerts.")
        @Argument var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            _ = try await connection.api().object(.DELETE, MonitorCommand.path(name))
            print("monitor \(name) deleted")
        }
    }
}
