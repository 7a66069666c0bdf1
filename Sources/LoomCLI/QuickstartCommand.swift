import ArgumentParser
import Foundation
import LoomCore
import LoomModels
import LoomPipelines
import LoomStore
import LoomTracking
import NIOCore
import NIOHTTP1
import NIOPosix

/// `loom quickstart`: the closed loop on this machine with nothing but the binary: data, a
/// model, an endpoint, traffic, drift, a monitor that retrains, a canary that promotes.
struct QuickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart",
        abstract: "Run the whole loop: train, deploy, send traffic, shift it, detect drift, retrain, canary, promote.",
        discussion: """
            Makes a data folder (default ./loom-quickstart, which must not exist yet), generates example churn data, \
            registers it as a dataset, trains and registers a model, starts `loom server` on it, deploys the model to an \
            endpoint, sends traffic, then traffic whose distribution has shifted (with newly labelled data registered as \
            the dataset's next version). A monitor detects the drift and runs a retraining pipeline; the version it \
            registers goes out as a canary whose gates promote it. Each step is printed as it happens; afterwards the \
            server keeps running so that everything can be seen in the UI (Ctrl-C stops it), unless --exit.
            """)

    @Option(help: ArgumentHelp("The data folder to make (must not exist).", valueName: "dir")) var data = "loom-quickstart"
    @Option(help: "The server's port (0: any free one).") var port = 0
    @Flag(help: "Stop the server at the end instead of keeping it running.") var exit = false

    func run() async throws {
        let folder = URL(fileURLWithPath: data).standardizedFileURL.path
        guard !FileManager.default.fileExists(atPath: folder) else {
            throw LoomError.alreadyExists("\(folder) exists: give --data a new folder (the quickstart makes its own)")
        }
        let example = (folder as NSString).appendingPathComponent("example")
        try FileManager.default.createDirectory(atPath: example, withIntermediateDirectories: true)
        let started = Date()
        func step(_ text: String) {
            print(String(format: "[%5.1fs] ", Date().timeIntervalSince(started)) + text)
        }

        // 1. Data, a dataset, a model: in the store directly, before the server runs.
        let training = (example as NSString).appendingPathComponent("churn.csv")
        try Self.churn(rows: 4000, seed: 1, shifted: false).write(toFile: training, atomically: true, encoding: .utf8)
        step("generated \(training) (4,000 customers: tenure, plan, monthly, churned)")
        let storage = try StoreOptions.parse(["--data", folder])
        let (tracking, _) = try await storage.open(logger: cliLogger())
        do {
            try await AuditContext.$current.withValue(AuditContext(actor: "quickstart", origin: "loom quickstart")) {
                let registered = try await tracking.registerDataset(name: "churn-train", path: training, description: "quickstart training data")
                step("registered dataset churn-train version \(registered.version.version) (\(registered.version.digest.prefix(19))…)")
                let options = TrainingOptions(family: .logistic, target: "churned")
                var request = TrainingRequest(data: .version(name: "churn-train", version: 1), options: options)
                request.registerAs = "churn"
                request.experiment = "quickstart"
                let record = try await tracking.trainModel(request)
                let metrics = record.result.validation?.logged(prefix: "") ?? record.result.training.logged(prefix: "")
                let accuracy = metrics.first { $0.0 == "accuracy" }.map { String(format: "%.3f", $0.1) } ?? "?"
                step("trained a logistic model on churn-train@1 and registered it as churn version \(record.modelVersion?.version ?? "?") (accuracy \(accuracy))")
                let pipelineFolder = (example as NSString).appendingPathComponent("retrain")
                try FileManager.default.createDirectory(atPath: pipelineFolder, withIntermediateDirectories: true)
                let pipelineFile = (pipelineFolder as NSString).appendingPathComponent("pipeline.yaml")
                try Self.retrainPipeline.write(toFile: pipelineFile, atomically: true, encoding: .utf8)
                let spec = try PipelineSpec.parse(yaml: Self.retrainPipeline, file: pipelineFile)
                _ = try await tracking.store.applyPipeline(spec, text: Self.retrainPipeline, directory: pipelineFolder, workspace: Workspace.defaultName, actor: "quickstart")
                step("applied pipeline retrain (\(pipelineFile)): train on churn-train@latest, register as churn")
            }
        } catch {
            await tracking.store.shutdown()
            throw error
        }
        await tracking.store.shutdown()

        // 2. The server, as a child process of this binary.
        let port = try self.port == 0 ? Self.freePort() : self.port
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        server.arguments = ["server", "--data", folder, "--port", String(port), "--host", "127.0.0.1"]
        var environment = ProcessInfo.processInfo.environment
        environment["LOOM_MONITOR_INTERVAL"] = "1"
        environment["LOOM_ENDPOINT_REFRESH"] = "0.5"
        environment["LOOM_SCHEDULER_INTERVAL"] = "1"
        server.environment = environment
        let log = (folder as NSString).appendingPathComponent("server.log")
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw LoomError.internalError("cannot write \(log)") }
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        server.standardOutput = logHandle
        server.standardError = logHandle
        try server.run()
        defer {
            if server.isRunning {
                server.terminate()
                server.waitUntilExit()
            }
        }
        let base = "http://127.0.0.1:\(port)"
        let api = ServerAPI(base: base, token: nil)
        try await Self.waitUntilUp(api, server)
        step("started loom server at \(base) (log: \(log))")

        // 3. An endpoint serving the model, collecting every request.
        _ = try await api.object(.POST, "/api/v1/endpoints", json: ["name": "churn", "sampling_rate": 1, "description": "quickstart churn scores"])
        _ = try await api.object(.POST, "/api/v1/endpoints/churn/deployments", json: ["name": "blue", "model": "models:/churn/1"])
        _ = try await api.object(.PUT, "/api/v1/endpoints/churn/traffic", json: ["traffic": ["blue": 100]])
        step("endpoint churn: deployment blue serves churn/1 with all live traffic; requests are collected for monitoring")

        // 4. The monitor, with its action.
        _ = try await api.object(.POST, "/api/v1/monitors", json: ["spec": Self.monitor])
        step("applied monitor churn-watch: data drift, prediction drift, data quality against churn/1's training data (from lineage); on data drift, run retrain, then a canary")

        // 5. Normal traffic: every signal passes.
        try await Self.score(api, csv: Self.churn(rows: 1000, seed: 2, shifted: false), prefix: "normal")
        step("sent 1,000 customers like the training data (50 requests)")
        var pass = try await Self.passWhenCollected(api, rows: 1000)
        step("monitor pass: " + Self.describe(pass))

        // 6. The world moves: fresh labelled data, and traffic that looks like it.
        let fresh = Self.churn(rows: 4000, seed: 3, shifted: true)
        _ = try await api.call(.POST, "/api/v1/datasets/churn-train/versions?file_name=churn-recent.csv", body: ByteBuffer(string: fresh))
        step("registered churn-train version 2: 4,000 recent customers, labelled (bills up, a new enterprise plan)")
        try await Self.score(api, csv: Self.churn(rows: 3000, seed: 4, shifted: true), prefix: "shifted")
        step("sent 3,000 customers like the recent ones (150 requests)")
        pass = try await Self.passWhenCollected(api, rows: 4000)
        step("monitor pass: " + Self.describe(pass))
        for alert in pass["alerts_opened"] as? [[String: Any]] ?? [] {
            step("alert opened: \(alert["signal"] as? String ?? "?"): \(alert["summary"] as? String ?? "")")
        }

        // 7. Retraining, then the canary.
        var alert: [String: Any] = [:]
        let deadline = Date().addingTimeInterval(300)
        var announcedRun = false
        while Date() < deadline {
            let alerts = try await api.object(.GET, "/api/v1/alerts?monitor=churn-watch&state=open")["items"] as? [[String: Any]] ?? []
            alert = alerts.first { $0["signal"] as? String == "data_drift" } ?? [:]
            if let run = alert["action_run_id"] as? String, !announcedRun {
                step("retraining: pipeline run \(run) of retrain started by the alert")
                announcedRun = true
            }
            if alert["action_done"] as? Bool == true { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        guard let rolloutID = alert["action_rollout_id"] as? String else {
            throw LoomError.invalidState("the retraining did not start a rollout: \(alert["action_message"] as? String ?? "it did not finish within 5 minutes")")
        }
        step(alert["action_message"] as? String ?? "rollout started")
        let rollout = try await Self.followRollout(api, id: rolloutID, step: step)
        let endpoint = try await api.object(.GET, "/api/v1/endpoints/churn")
        let traffic = (endpoint["traffic"] as? [String: Int] ?? [:]).sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)%" }
        step("rollout \(rollout["state"] as? String ?? "?"): live traffic now \(traffic.joined(separator: ", "))")

        print("""

            The loop ran end to end. See it in the UI:
              \(base)/monitors/churn-watch      the signals over time, the alert and what it started
              \(base)/endpoints/churn           the deployments and the canary's decisions
              \(base)/models/churn              both versions
              \(base)/lineage?node=model:churn/2  dataset → training run → model → deployment
            """)
        if exit { return }
        print("The server keeps running (data in \(folder)); Ctrl-C stops it.")
        server.waitUntilExit()
    }

    // MARK: Helpers

    static let retrainPipeline = """
        pipeline: retrain
        description: retrain the churn model on the latest labelled data (started by monitor churn-watch)
        parameters:
          data: {type: dataset, default: churn-train@latest}
          reason: {type: string, default: manual}
        steps:
          train:
            kind: train
            inputs: {data: "${{ parameters.data }}"}
            with: {target: churned, model: logistic}
          register:
            kind: register
            inputs: {model: "${{ steps.train.outputs.model }}"}
            with: {name: churn, description: "retrained: ${{ parameters.reason }}"}

        """

    static let monitor = """
        kind: monitor
        name: churn-watch
        endpoint: churn
        window: {size: 1h}
        signals:
          - {type: data_drift}
          - {type: prediction_drift}
          - {type: data_quality}
        actions:
          - on: [data_drift]
            run_pipeline: {name: retrain, parameters: {reason: "${signal} on ${endpoint} at ${window.end}"}}
            then_rollout: {strategy: canary, steps: [25, 100], bake: 2s, gate_interval: 1s, min_requests: 10}

        """

    /// Churn-like customers, CSV. Shifted: bills 25 higher and a quarter on a new plan.
    static func churn(rows: Int, seed: UInt64, shifted: Bool) -> String {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        var out = "tenure,plan,monthly,churned\n"
        let plans = shifted ? ["basic", "plus", "pro", "enterprise"] : ["basic", "plus", "pro"]
        for _ in 0..<rows {
            let tenure = Int(next() * 60)
            let plan = plans[min(plans.count - 1, Int(next() * Double(plans.count)))]
            let normal = (-2 * log(max(next(), 1e-300))).squareRoot() * cos(2 * .pi * next())
            let monthly = ((40 + 12 * normal + (shifted ? 25 : 0)) * 100).rounded() / 100
            var churned = monthly > (shifted ? 70 : 45) || (tenure < 6 && plan == "basic")
            if next() < 0.05 { churned.toggle() }
            out += "\(tenure),\(plan),\(monthly),\(churned ? 1 : 0)\n"
        }
        return out
    }

    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress?.port ?? 0
        try channel.close().wait()
        return port
    }

    static func waitUntilUp(_ api: ServerAPI, _ server: Process) async throws {
        for _ in 0..<300 {
            guard server.isRunning else { throw LoomError.unavailable("loom server exited (status \(server.terminationStatus)); see its log") }
            if (try? await api.call(.GET, "/health")) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LoomError.unavailable("loom server did not start within 30 s")
    }

    /// Scores a CSV's rows in requests of 20, with labels posted for them afterwards.
    static func score(_ api: ServerAPI, csv: String, prefix: String) async throws {
        let lines = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        var labels: [[String: Any]] = []
        for (i, start) in stride(from: 0, to: lines.count, by: 20).enumerated() {
            let batch = lines[start..<min(start + 20, lines.count)]
            let records: [[String: Any]] = batch.map { ["tenure": Int($0[0]) ?? 0, "plan": $0[1], "monthly": Double($0[2]) ?? 0] }
            let id = "\(prefix)-\(i)"
            _ = try await api.call(.POST, "/endpoints/churn/invocations", json: ["dataframe_records": records], headers: [("loom-correlation-id", id)])
            labels.append(["correlation_id": id, "label": batch.map { Int($0[3]) ?? 0 }])
        }
        _ = try await api.object(.POST, "/api/v1/endpoints/churn/labels", json: ["labels": labels])
    }

    /// A monitor pass once the endpoint's collector has written at least `rows` rows (it writes
    /// every 2 s).
    static func passWhenCollected(_ api: ServerAPI, rows: Int) async throws -> [String: Any] {
        var pass: [String: Any] = [:]
        for _ in 0..<60 {
            try await Task.sleep(for: .milliseconds(500))
            pass = try await api.object(.POST, "/api/v1/monitors/churn-watch/run")
            if (pass["rows"] as? Int ?? 0) >= rows { return pass }
        }
        return pass
    }

    static func describe(_ pass: [String: Any]) -> String {
        let results = pass["results"] as? [[String: Any]] ?? []
        let verdicts = results.map { r in "\(r["signal"] as? String ?? "?") \(r["passed"] as? Bool == true ? "passed" : "FAILED")" }
        return "\(pass["rows"] as? Int ?? 0) rows against \(pass["reference"] as? String ?? "?"): " + verdicts.joined(separator: ", ")
    }

    /// Sends traffic while the rollout runs, printing each decision; returns it once it ends.
    static func followRollout(_ api: ServerAPI, id: String, step: (String) -> Void) async throws -> [String: Any] {
        var seen = 0
        var body = Self.churn(rows: 200, seed: 5, shifted: true).split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        body = Array(body.prefix(20))
        let records: [[String: Any]] = body.map { ["tenure": Int($0[0]) ?? 0, "plan": $0[1], "monthly": Double($0[2]) ?? 0] }
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            for _ in 0..<10 { _ = try? await api.call(.POST, "/endpoints/churn/invocations", json: ["dataframe_records": records]) }
            let rollout = try await api.object(.GET, "/api/v1/endpoints/churn/rollouts/\(id)")
            let decisions = rollout["decisions"] as? [[String: Any]] ?? []
            for d in decisions.dropFirst(seen) { step("canary: \(d["summary"] as? String ?? "")") }
            seen = decisions.count
            if let state = rollout["state"] as? String, state != "running" { return rollout }
        }
        throw LoomError.invalidState("the rollout did not end within 5 minutes")
    }
}
