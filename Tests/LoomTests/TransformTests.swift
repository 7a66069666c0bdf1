import Foundation
import LoomCore
import LoomData
import LoomModels
import Testing

/// Expressions, transforms (fitting, applying, reusing) and models that carry their transform.
@Suite("Transforms")
struct TransformTests {
    static func eval(_ text: String, _ columns: [String] = ["a", "b", "s"], _ values: [Value] = [.field("4"), .null, .text("Oslo")]) throws -> Value {
        try Expression(text).compile(columns: columns).evaluate(values, line: 7)
    }

    @Test func expressionsFollowPrecedenceAndNullRules() throws {
        #expect(try Self.eval("1 + 2 * 3 ^ 2") == .number(19))
        #expect(try Self.eval("-2 ^ 2") == .number(-4))
        #expect(try Self.eval("(a + 1) / 2") == .number(2.5))
        #expect(try Self.eval("a % 3 = 1 and s == 'Oslo'") == .bool(true))
        #expect(try Self.eval("a > 3 or b > 1") == .bool(true))
        #expect(try Self.eval("not a < 3") == .bool(true))
        // Nulls: arithmetic gives null, comparisons are false, coalesce and is_null see them.
        #expect(try Self.eval("b + 1") == .null)
        #expect(try Self.eval("b > 0") == .bool(false) && (try Self.eval("b != 0")) == .bool(false))
        #expect(try Self.eval("coalesce(b, a * 2)") == .number(8))
        #expect(try Self.eval("is_null(b) and not is_null(a)") == .bool(true))
        #expect(try Self.eval("if(a >= 4, 'big', 'small')") == .text("big"))
        #expect(try Self.eval("round(sqrt(a) / 3, 2)") == .number(0.67))
        #expect(try Self.eval("min(a, 2, 9)") == .number(2) && (try Self.eval("max(a, 2, 9)")) == .number(9))
        #expect(try Self.eval("upper(s)") == .text("OSLO") && (try Self.eval("trim(' x ')")) == .text("x"))
        #expect(try Self.eval("concat(lower(s), '-', length(s))") == .text("oslo-4"))
        #expect(try Self.eval("`unit price` * 2", ["unit price"], [.field("1.5")]) == .number(3))
        #expect(try Self.eval("a / 0") == .null)
        #expect(try Self.eval("log(0 - a)") == .null)
        // Numbers compare as numbers, text as text.
        #expect(try Self.eval("a > 10") == .bool(false))
        #expect(try Self.eval("s < 'Paris'") == .bool(true))
    }

    @Test func badExpressionsAreClearErrors() throws {
        func message(_ text: String) -> String {
            do {
                _ = try Self.eval(text)
                return "no error"
            } catch let e as LoomError {
                return "\(e)"
            } catch {
                return "\(error)"
            }
        }
        #expect(message("a +") .contains("unexpected end"))
        #expect(message("nope * 2").contains("no column nope"))
        #expect(message("frob(a)").contains("unknown function frob"))
        #expect(message("pow(a)").contains("pow takes 2 arguments"))
        #expect(message("'open").contains("never closed"))
        #expect(message("a # 2").contains("unexpected character #"))
        #expect(message("s * 2").contains("line 7") && message("s * 2").contains("needs a number, got 'Oslo'"))
    }

    static func run(_ csv: String, _ plan: TransformPlan) throws -> (rows: [[String?]], columns: [String], fitted: TransformPlan) {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try TableFiles.list(try DataFiles.write(dir, "in.csv", csv))
        let (fitted, _) = try Transformer.fit(plan, files: files)
        let out = dir.appendingPathComponent("out.csv").path
        var t = Transformer(plan: fitted, output: out)
        _ = try TableReader.read(files, into: &t)
        try t.finish()
        var sink = CollectingSink()
        _ = try TableReader.read(try TableFiles.list(out), into: &sink)
        return (sink.rows, sink.columns, fitted)
    }

    static let people = "id,age,color,income\n1,20,red,100\n2,17,blue,300\n3,40,red,\n4,60,green,500\n5,30,,200\n"

    @Test func stepsRunInOrderAndLearnFromWhatReachesThem() throws {
        let plan = try TransformPlan.parse(yaml: """
            steps:
              - filter: "age >= 18"
              - derive: {decade: "floor(age / 10)", rich: "income > 250"}
              - drop: [id]
              - one_hot: {columns: [color], max_categories: 2}
              - standardize: [age]
              - normalize: [income]
            """)
        let (rows, columns, fitted) = try Self.run(Self.people, plan)
        #expect(columns == ["age", "color=green", "color=red", "income", "decade", "rich"])
        // The filter ran before fitting: ages 20, 40, 60, 30 → mean 37.5; the two most
        // frequent colours among them (red twice, then green before blue… blue was filtered).
        let standardize = fitted.steps[4].statistics?["age"]
        #expect(standardize?.mean == 37.5)
        #expect(abs((standardize?.std ?? 0) - (218.75).squareRoot()) < 1e-12)
        #expect(fitted.steps[3].categories?["color"] == ["green", "red"])
        #expect(fitted.steps[5].statistics?["income"]?.min == 100 && fitted.steps[5].statistics?["income"]?.max == 500)
        #expect(rows.count == 4)
        #expect(rows[0][1] == "0" && rows[0][2] == "1" && rows[0][3] == "0" && rows[0][4] == "2" && rows[0][5] == "false")
        #expect(rows[1][3] == nil && rows[1][5] == "false")  // missing income stays missing
        #expect(rows[2][1] == "1" && rows[2][3] == "1")
        #expect(rows[3][1] == "0" && rows[3][2] == "0")  // missing colour: no category set
        #expect(fitted.isFitted && !plan.isFitted)
        // Applying the fitted plan to other data learns nothing new: an unseen colour is all 0.
        let (other, _, again) = try Self.run("id,age,color,income\n9,37.5,purple,300\n", fitted)
        #expect(again == fitted)
        #expect(other == [["0", "0", "0", "0.5", "3", "true"]])
    }

    @Test func transformPlansAreChecked() throws {
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "steps: []") }
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "steps:\n  - explode: [a]") }
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "steps:\n  - filter: 'a >'") }
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "steps:\n  - one_hot: {columns: [a], colour: 2}") }
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "steps:\n  - select: a") }
        #expect(throws: LoomError.self) { try TransformPlan.parse(yaml: "stages:\n  - select: [a]") }
        // A column that is not there, text where a number is scaled, a column made twice.
        #expect(throws: LoomError.self) { try Self.run(Self.people, TransformPlan(steps: [.init(kind: .select, columns: ["nope"])])) }
        #expect(throws: LoomError.self) { try Self.run(Self.people, TransformPlan(steps: [.init(kind: .standardize, columns: ["color"])])) }
        #expect(throws: LoomError.self) {
            try Self.run(Self.people, TransformPlan(steps: [.init(kind: .derive, derived: [.init(name: "x", expression: "1")]), .init(kind: .select, columns: ["x", "x"])]))
        }
    }

    /// A model trained on transformed data, carrying the transform, scores raw rows as the
    /// plain model scores transformed ones.
    @Test func modelsCarryTheirPreprocessing() throws {
        var csv = "id,age,color,spend\n"
        for i in 0..<400 { csv += "\(i),\(18 + i % 50),\(["red", "blue", "green"][i % 3]),\((i * 37) % 1000)\n" }
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Frame.read(try TableFiles.list(try DataFiles.write(dir, "raw.csv", csv))).0
        let plan = TransformPlan(steps: [
            .init(kind: .derive, derived: [.init(name: "big", expression: "if(spend > 500, 'yes', 'no')")]),
            .init(kind: .drop, columns: ["id"]),
            .init(kind: .oneHot, columns: ["color"]),
            .init(kind: .standardize, columns: ["age"]),
        ])
        let (_, columns, fitted) = try Self.run(csv, plan)
        let transformedRows = try Self.run(csv, fitted)
        var text = columns.joined(separator: ",") + "\n"
        for r in transformedRows.rows { text += r.map { $0 ?? "" }.joined(separator: ",") + "\n" }
        let transformed = try Frame.read(try TableFiles.list(try DataFiles.write(dir, "t.csv", text))).0
        var options = TrainingOptions(family: .logistic, target: "big")
        options.exclude = ["spend"]
        var model = try Trainer.train(transformed, options: options).model
        let plain = try model.predict(transformed)
        model.preprocessing = fitted
        let back = try LoomModel.decode(try model.encoded())
        let carried = try back.predict(raw)
        #expect(carried.labels == plain.labels)
        #expect(zip(carried.probabilities, plain.probabilities).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    /// Writing a file opens it in place: a symlink stays a symlink (a device such as /dev/null
    /// stays a device), where writing a new file and renaming it would replace it.
    @Test func csvOutputIsWrittenInPlace() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("target.csv").path
        let link = dir.appendingPathComponent("link.csv").path
        #expect(FileManager.default.createFile(atPath: target, contents: Data()))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let writer = try CSVWriter(path: link, columns: ["a"])
        try writer.write([ArraySlice("1".utf8)])
        try writer.close()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "a\n1\n")
    }
}
