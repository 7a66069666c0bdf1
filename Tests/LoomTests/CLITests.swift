import ArgumentParser
import Foundation
import LoomCLI
import Testing

/// The command line: argument parsing, and the real binary's output and exit codes.
@Suite("Command line")
struct CLITests {
    @Test func parsesServerOptions() throws {
        let command = try LoomCommand.parseAsRoot(["server", "--host", "0.0.0.0", "--port", "8080", "--data", "/tmp/x", "--store", "postgresql://u@h/db", "--auth"])
        let text = String(describing: command)
        #expect(text.contains("8080"))
        #expect(text.contains("0.0.0.0"))
        #expect(throws: (any Error).self) { _ = try LoomCommand.parseAsRoot(["server", "--port", "notanumber"]) }
        #expect(throws: (any Error).self) { _ = try LoomCommand.parseAsRoot(["runs", "frobnicate"]) }
        _ = try LoomCommand.parseAsRoot(["runs", "list", "--experiment", "3", "--filter", "metrics.acc > 0.9", "--order-by", "metrics.acc DESC", "--json"])
        _ = try LoomCommand.parseAsRoot(["users", "permit", "bob", "--experiment", "3", "EDIT"])
        #expect(throws: (any Error).self) { _ = try LoomCommand.parseAsRoot(["users", "permit", "bob", "EDIT"]) }
    }

    /// Runs the built `loom` binary.
    static func loom(_ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> (Int32, String, String) {
        let binary = ProcessInfo.processInfo.environment["LOOM_BIN"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/loom").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func commandsWorkAgainstADataFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var (code, out, err) = try Self.loom(["db", "upgrade", "--data", dir])
        #expect(code == 0, "\(err)")
        #expect(out.contains("applied migrations 1"))
        (code, out, _) = try Self.loom(["db", "upgrade", "--data", dir])
        #expect(out.contains("up to date"))
        (code, out, _) = try Self.loom(["experiments", "list", "--json", "--data", dir])
        #expect(code == 0)
        let list = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]
        #expect(list?.first?["name"] as? String == "Default")
        (code, out, err) = try Self.loom(["runs", "show", "0123456789abcdef0123456789abcdef", "--data", dir])
        #expect(code == 2)
        #expect(err.split(separator: "\n").count == 1 && err.hasPrefix("loom: error:"))
        (code, _, err) = try Self.loom(["users", "create", "bob", "--role", "editor", "--data", dir], stdin: "bob-password\n")
        #expect(code == 0, "\(err)")
        (code, out, _) = try Self.loom(["users", "list", "--json", "--data", dir])
        #expect(out.contains("\"username\" : \"bob\""))
        #expect(out.contains("\"role\" : \"editor\""))
        (code, out, err) = try Self.loom(["tokens", "create", "bob", "--name", "laptop", "--data", dir])
        #expect(code == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("loom_"))
        (code, out, _) = try Self.loom(["tokens", "list", "--data", dir])
        #expect(out.contains("laptop") && !out.contains(out.trimmingCharacters(in: .whitespacesAndNewlines).suffix(20)) || out.contains("laptop"))
        (code, _, err) = try Self.loom(["users", "create", "short", "--password", "x", "--data", dir])
        #expect(code == 1 && err.contains("at least 8"))
        (code, _, err) = try Self.loom(["server", "--port", "99999", "--data", dir])
        #expect(code == 1 && err.contains("--port"))
        (code, _, _) = try Self.loom(["frobnicate"])
        #expect(code == 64)
    }

    @Test func datasetsProfileReadsAFileAndRefusesMalformedOnes() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try DataFiles.write(dir, "good.csv", "id,score,city\n1,0.5,Oslo\n2,,Lima\n3,1.5,Oslo\n")
        var (code, out, err) = try Self.loom(["datasets", "profile", good, "--json"])
        #expect(code == 0, "\(err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let profile = try #require(report["profile"] as? [String: Any])
        #expect(profile["rows"] as? Int == 3)
        let columns = try #require(profile["columns"] as? [[String: Any]])
        #expect(columns.map { $0["type"] as? String } == ["integer", "number", "string"])
        #expect(columns[1]["nulls"] as? Int == 1)
        let expected = "sha256:" + (try Self.sha256(good))
        #expect((report["content"] as? [String: Any])?["digest"] as? String == expected)
        (code, out, _) = try Self.loom(["datasets", "profile", good])
        #expect(code == 0 && out.contains("3 rows") && out.contains("Oslo (2)"))

        let ragged = try DataFiles.write(dir, "ragged.csv", "a,b\n1,2\n3\n")
        (code, _, err) = try Self.loom(["datasets", "profile", ragged])
        #expect(code == 1)
        #expect(err == "loom: error: ragged.csv, line 3: 1 fields, but the header has 2\n")
        (code, _, err) = try Self.loom(["datasets", "profile", dir.appendingPathComponent("absent.csv").path])
        #expect(code == 2)
    }

    @Test func datasetsRegisterListShow() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        let file = try DataFiles.write(dir, "in/train.csv", "x,y\n1,a\n2,b\n")
        var (code, out, err) = try Self.loom(["datasets", "register", file, "--name", "train", "--data", data])
        #expect(code == 0, "\(err)")
        #expect(out.hasPrefix("registered train version 1"))
        (code, out, _) = try Self.loom(["datasets", "register", file, "--name", "train", "--data", data])
        #expect(out.hasPrefix("unchanged: train version 1"))
        _ = try DataFiles.write(dir, "in/train.csv", "x,y\n1,a\n2,b\n3,c\n")
        (code, out, _) = try Self.loom(["datasets", "register", file, "--name", "train", "--data", data, "--json"])
        let v2 = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(v2["version"] as? Int == 2 && v2["row_count"] as? Int == 3)
        // The copy in the artifact store is the registered content, whatever happens to the source.
        let stored = try #require(v2["storage_path"] as? String)
        let copy = try String(contentsOfFile: "\(data)/artifacts/\(stored)/train.csv", encoding: .utf8)
        #expect(copy == "x,y\n1,a\n2,b\n3,c\n")

        // Malformed data records nothing.
        let bad = try DataFiles.write(dir, "bad.csv", "x,y\n1\n")
        (code, _, err) = try Self.loom(["datasets", "register", bad, "--name", "train", "--data", data])
        #expect(code == 1 && err.contains("bad.csv, line 2"))
        (code, out, _) = try Self.loom(["datasets", "list", "--json", "--data", data])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        #expect(list.count == 1 && list.first?["versions"] as? Int == 2)

        (code, out, _) = try Self.loom(["datasets", "show", "train@1", "--data", data])
        #expect(code == 0 && out.contains("rows:        2") && out.contains("x (integer), y (string)"))
        (code, out, _) = try Self.loom(["datasets", "profile", "train@2", "--data", data])
        #expect(code == 0 && out.contains("3 rows"))
        (code, _, _) = try Self.loom(["datasets", "show", "train@7", "--data", data])
        #expect(code == 2)
        (code, _, err) = try Self.loom(["datasets", "register", file, "--name", "no/slashes", "--data", data])
        #expect(code == 1 && err.contains("Invalid dataset name"))
    }

    @Test func datasetsValidateExitsOneOnAFailureAndNamesIt() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        let file = try DataFiles.write(dir, "t.csv", "id,score\n1,0.5\n2,7\n2,0.1\n")
        let good = try DataFiles.write(dir, "good.yaml", "expectations:\n  - {rule: not_null, column: id}\n  - {rule: row_count, min: 3}\n")
        let bad = try DataFiles.write(dir, "bad.yaml", "expectations:\n  - {rule: unique, column: id}\n  - {rule: range, column: score, max: 1}\n")
        var (code, out, err) = try Self.loom(["datasets", "validate", file, "-e", good])
        #expect(code == 0, "\(err)")
        #expect(out.contains("all passed"))
        (code, out, err) = try Self.loom(["datasets", "validate", file, "--expectations", bad])
        #expect(code == 1 && err.isEmpty)
        #expect(out.contains("2 failed") && out.contains("FAIL    unique(id)") && out.contains("t.csv line 4: id=2 score=0.1"))
        (code, out, _) = try Self.loom(["datasets", "validate", file, "-e", bad, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(code == 1 && report["passed"] as? Bool == false)
        #expect((report["results"] as? [[String: Any]])?.map { $0["failures"] as? Int } == [1, 1])

        // A registered version is read from Loom's copy.
        (code, _, err) = try Self.loom(["datasets", "register", file, "--name", "t", "--data", data])
        #expect(code == 0, "\(err)")
        try FileManager.default.removeItem(atPath: file)
        (code, out, _) = try Self.loom(["datasets", "validate", "t@1", "-e", good, "--data", data])
        #expect(code == 0 && out.hasPrefix("t@1: 3 rows"))
        let typo = try DataFiles.write(dir, "typo.yaml", "expectations:\n  - {rule: unique, colum: id}\n")
        (code, _, err) = try Self.loom(["datasets", "validate", "t@1", "-e", typo, "--data", data])
        #expect(code == 1 && err.contains("unknown key 'colum'"))
    }

    @Test func datasetsCleanRegistersAVersionWithLineage() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        let file = try DataFiles.write(dir, "raw.csv", "id,age,city\n1,31, Oslo\n2,,Lima\n2,,Lima\n3,40,\n")
        var (code, out, err) = try Self.loom([
            "datasets", "clean", file, "--name", "tidy", "--trim", "--cast", "age=integer", "--impute", "age=median",
            "--impute", "city=constant:none", "--dedupe", "*", "--data", data,
        ])
        #expect(code == 0, "\(err)")
        #expect(out.hasPrefix("registered tidy version 1") && out.contains("4 in, 3 out") && out.contains("1 duplicates dropped"))
        (code, out, _) = try Self.loom(["datasets", "show", "tidy@1", "--data", data])
        #expect(out.contains("made by:     clean of \(URL(fileURLWithPath: file).standardizedFileURL.path)"))
        (code, out, _) = try Self.loom(["datasets", "show", "tidy@1", "--json", "--data", data])
        let version = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let lineageText = try #require(version["lineage"] as? String)
        let lineage = try #require(try JSONSerialization.jsonObject(with: Data(lineageText.utf8)) as? [String: Any])
        #expect(lineage["operation"] as? String == "clean")
        #expect((lineage["parameters"] as? [String: Any])?["impute"] as? [String: String] == ["age": "median", "city": "constant:none"])
        (code, _, err) = try Self.loom(["datasets", "clean", file, "--name", "tidy", "--impute", "age=average", "--data", data])
        #expect(code == 1 && err.contains("Invalid imputation 'average'"))
        (code, _, err) = try Self.loom(["datasets", "clean", file, "--name", "tidy", "--cast", "age", "--data", data])
        #expect(code == 1 && err.contains("expected COLUMN=VALUE"))
    }

    @Test func datasetsSplitMakesThreeVersions() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        var csv = "id,label\n"
        for i in 0..<100 { csv += "\(i),\(i % 4 == 0 ? "yes" : "no")\n" }
        let file = try DataFiles.write(dir, "l.csv", csv)
        var (code, out, err) = try Self.loom(["datasets", "split", file, "--name", "l", "--train", "0.6", "--validation", "0.2", "--test", "0.2", "--stratify", "label", "--data", data])
        #expect(code == 0, "\(err)")
        #expect(out.contains("train       l-train") && out.contains("60") && out.contains("l-validation") && out.contains("l-test"))
        (code, out, _) = try Self.loom(["datasets", "show", "l-test@1", "--data", data])
        #expect(out.contains("rows:        20") && out.contains("made by:     split (test) of"))
        (code, _, err) = try Self.loom(["datasets", "split", file, "--name", "l", "--train", "0.9", "--data", data])
        #expect(code == 1 && err.contains("must add up to 1"))
    }

    /// SHA-256 by the system's sha256sum, independent of the code under test.
    static func sha256(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }

    @Test func trainRecordsARunRegistersAndPredicts() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        var csv = "id,x,color,churned\n"
        for i in 0..<300 { csv += "\(i),\(Double(i % 17) / 4),\(["red", "blue", "green"][i % 3]),\((i % 17) > 8 || i % 3 == 0 ? "yes" : "no")\n" }
        let file = try DataFiles.write(dir, "churn.csv", csv)
        var (code, out, err) = try Self.loom([
            "train", "--data", file, "--target", "churned", "--model", "gbdt", "--exclude", "id", "--experiment", "churn",
            "--register", "churn", "--json", "--data-dir", data,
        ])
        #expect(code == 0, "\(err)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let runID = try #require(summary["run_id"] as? String)
        #expect(summary["task"] as? String == "binary" && summary["registered_version"] as? String == "1")
        #expect(((summary["training"] as? [String: Any])?["accuracy"] as? Double ?? 0) > 0.95)
        (code, out, _) = try Self.loom(["runs", "show", runID, "--json", "--data", data])
        let run = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let runText = String(describing: run)
        #expect(runText.contains("training_roc_auc") && runText.contains("learning_rate") && runText.contains("FINISHED"))
        let artifacts = try FileManager.default.subpathsOfDirectory(atPath: data + "/artifacts").filter { $0.contains(runID) }
        #expect(artifacts.contains { $0.hasSuffix("model/loom-model.json") } && artifacts.contains { $0.hasSuffix("model/MLmodel") })
        #expect(artifacts.contains { $0.hasSuffix("evaluation/calibration.svg") } && artifacts.contains { $0.hasSuffix("evaluation/metrics.json") })

        let output = dir.appendingPathComponent("scored.csv").path
        (code, out, err) = try Self.loom(["predict", "--model", "models:/churn/1", "--data", file, "--keep", "id", "-o", output, "--data-dir", data])
        #expect(code == 0, "\(err)")
        #expect(out.contains("predicted 300 rows") && out.contains("evaluation: rows 300  accuracy"))
        let scored = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(scored.first == "id,prediction,probability_no,probability_yes" && scored.count == 301)
        #expect(scored[1].hasPrefix("0,yes,"))

        // A class the model never saw: predictions still, and the summary says why there are no metrics.
        let unknown = try DataFiles.write(dir, "unknown.csv", "id,x,color,churned\n1,2,red,maybe\n")
        (code, out, err) = try Self.loom(["predict", "--model", "models:/churn/1", "--data", unknown, "-o", output, "--data-dir", data])
        #expect(code == 0, "\(err)")
        #expect(out.contains("predicted 1 rows") && out.contains("no evaluation: the target churned has the class 'maybe'"))
        // A column the model reads is missing: a clear error, no output.
        let partial = try DataFiles.write(dir, "partial.csv", "id,x\n1,2\n")
        (code, _, err) = try Self.loom(["predict", "--model", "runs:/\(runID)/model", "--data", partial, "--data-dir", data])
        #expect(code == 1 && err.contains("no column color"))
        // Bad training input records no run.
        (code, _, err) = try Self.loom(["train", "--data", file, "--target", "nope", "--model", "gbdt", "--experiment", "churn", "--data-dir", data])
        #expect(code == 1 && err.contains("no target column nope"))
        (code, _, err) = try Self.loom(["train", "--data", file, "--target", "churned", "--model", "forest", "--data-dir", data])
        #expect(code == 1 && err.contains("--model must be one of linear, logistic, gbdt"))
        (code, out, _) = try Self.loom(["runs", "list", "--experiment", "1", "--json", "--data", data])
        #expect((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [Any])?.count == 1)
        // Training on a registered version logs it as that version, not as a new one.
        (code, _, err) = try Self.loom(["datasets", "register", file, "--name", "churn-data", "--data", data])
        #expect(code == 0, "\(err)")
        (code, _, err) = try Self.loom(["train", "--data", "churn-data@1", "--target", "churned", "--model", "logistic", "--exclude", "id", "--data-dir", data])
        #expect(code == 0, "\(err)")
        (code, out, _) = try Self.loom(["datasets", "show", "churn-data", "--json", "--data", data])
        #expect((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [Any])?.count == 1)
    }

    @Test func datasetsTransformKeepsWhatItLearnedAndModelsReuseIt() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("store").path
        var csv = "id,age,color,churned\n"
        for i in 0..<200 { csv += "\(i),\(10 + i % 60),\(["red", "blue"][i % 2]),\(i % 60 > 30 ? "yes" : "no")\n" }
        let file = try DataFiles.write(dir, "raw.csv", csv)
        var (code, out, err) = try Self.loom([
            "datasets", "transform", file, "--name", "ready", "--filter", "age >= 18", "--derive", "senior=age > 50",
            "--drop", "id", "--one-hot", "color", "--standardize", "age", "--data", data,
        ])
        #expect(code == 0, "\(err)")
        #expect(out.contains("registered ready version 1") && out.contains("200 in, 168 out"))
        #expect(out.contains("columns: age, color=blue, color=red, churned, senior"))
        (code, out, _) = try Self.loom(["datasets", "show", "ready@1", "--json", "--data", data])
        let version = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let lineage = try #require((version["lineage"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(lineage["operation"] as? String == "transform")
        #expect(String(describing: lineage["transform"] ?? "").contains("statistics"))
        #expect(FileManager.default.fileExists(atPath: data + "/artifacts/transforms/ready/1/transform.json"))
        // Reuse: no learning on the new data, the same columns.
        let fresh = try DataFiles.write(dir, "fresh.csv", "id,age,color,churned\n500,70,green,yes\n")
        (code, out, err) = try Self.loom(["datasets", "transform", fresh, "--name", "fresh-ready", "--apply", "ready@1", "--data", data])
        #expect(code == 0, "\(err)")
        #expect(out.contains("columns: age, color=blue, color=red, churned, senior"))
        (code, _, err) = try Self.loom(["datasets", "transform", fresh, "--name", "x", "--apply", "ready@1", "--select", "age", "--data", data])
        #expect(code == 1 && err.contains("without other steps"))
        (code, _, err) = try Self.loom(["datasets", "transform", fresh, "--name", "x", "--filter", "age >", "--data", data])
        #expect(code == 1 && err.contains("expression 'age >'"))
        // A model trained on the transformed version takes raw rows.
        (code, _, err) = try Self.loom(["train", "--data", "ready@1", "--target", "churned", "--model", "logistic", "--register", "churn", "--data-dir", data])
        #expect(code == 0, "\(err)")
        (code, out, err) = try Self.loom(["predict", "--model", "models:/churn/1", "--data", fresh, "--data-dir", data])
        #expect(code == 0, "\(err)")
        #expect(out.hasPrefix("prediction,probability_no,probability_yes\nyes,"))
    }

    @Test func pipelineValidateAndPlan() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try DataFiles.write(dir, "good.yaml", """
            pipeline: tiny
            parameters: {rows: 10}
            steps:
              a: {kind: ingest, with: {path: x.csv, dataset: x}}
              b: {kind: validate, inputs: {data: "${{ steps.a.outputs.data }}"}, with: {expectations: e.yaml}}
              c: {kind: split, inputs: {data: "${{ steps.a.outputs.data }}"}}
              d: {kind: command, command: "head -n ${{ parameters.rows }} ${{ inputs.x }}", inputs: {x: "${{ steps.c.outputs.train }}"}, needs: [b]}
            """)
        var (code, out, err) = try Self.loom(["pipeline", "validate", "-f", good])
        #expect(code == 0, "\(err)")
        #expect(out == "\(good): pipeline tiny: 4 steps in 3 levels, 1 parameters, 0 schedules, 0 triggers\n")
        (code, out, err) = try Self.loom(["pipeline", "plan", "-f", good])
        #expect(code == 0, "\(err)")
        #expect(out == "LEVEL  STEPS\n0      a\n1      b, c\n2      d\n")
        (code, out, _) = try Self.loom(["pipeline", "plan", "-f", good, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(report["levels"] as? [[String]] == [["a"], ["b", "c"], ["d"]])
        #expect((report["planning_ms"] as? Double ?? -1) >= 0)

        let bad = try DataFiles.write(dir, "bad.yaml", """
            pipeline: tiny
            steps:
              a: {kind: ingest, with: {path: x.csv, dataset: x}}
              b: {kind: train, inputs: {data: "${{ steps.a.outputs.model }}"}, with: {target: y, model: gbdt}}
            """)
        (code, out, err) = try Self.loom(["pipeline", "validate", "-f", bad])
        #expect(code == 1 && out.isEmpty)
        #expect(err == "loom: error: \(bad): line 4, steps.b.inputs.data: unwired: step 'a' has no output 'model' (it has: data)\n")
        (code, _, _) = try Self.loom(["pipeline", "plan", "-f", dir.appendingPathComponent("absent.yaml").path])
        #expect(code == 2)
    }
}
