import Foundation
import LoomCore
import LoomData
import LoomStore
import LoomTesting
import LoomTracking
import Testing

@Suite("Cleaning data")
struct DataOperationTests {
    static func clean(_ csv: String, _ plan: CleanPlan) throws -> (rows: [[String?]], report: CleanReport) {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try TableFiles.list(try DataFiles.write(dir, "in.csv", csv))
        var profile: DatasetProfile?
        if plan.needsProfile {
            var stats = Cleaner.statistics(for: plan)
            _ = try TableReader.read(input, into: &stats)
            profile = stats.gathered
        }
        let out = dir.appendingPathComponent("out.csv").path
        var cleaner = Cleaner(plan: plan, output: out, profile: profile)
        _ = try TableReader.read(input, into: &cleaner)
        try cleaner.finish()
        var sink = CollectingSink()
        _ = try TableReader.read(try TableFiles.list(out), into: &sink)
        #expect(sink.columns == cleaner.report.columns)
        return (sink.rows, cleaner.report)
    }

    static let raw = "id,name,age,city\n1, ann ,31,Oslo\n2,bob,,Lima\n2,bob,,Lima\n3,cy,x,\n4,dee,40,Oslo\n5,eve,-,Rome\n"

    @Test("trim, cast, impute (statistics of the cast values), dedupe and drop columns, in that order")
    func plan() throws {
        var plan = CleanPlan()
        plan.trim = true
        plan.cast = ["age": .integer]
        plan.impute = ["age": .median, "city": .constant("unknown")]
        plan.dedupe = ["*"]
        plan.dropColumns = ["name"]
        let (rows, report) = try Self.clean(Self.raw, plan)
        // Ages after casting: 31, 40 (x and - do not convert): median 35.5.
        #expect(rows == [["1", "31", "Oslo"], ["2", "35.5", "Lima"], ["3", "35.5", "unknown"], ["4", "40", "Oslo"], ["5", "35.5", "Rome"]])
        #expect(report.rowsIn == 6 && report.rowsOut == 5 && report.droppedDuplicates == 1)
        #expect(report.castFailures == ["age": 2])
        #expect(report.imputed == ["age": 4, "city": 1])
    }

    @Test("drop rows with missing values; mean and mode")
    func dropAndStatistics() throws {
        var plan = CleanPlan()
        plan.dropMissing = ["age"]
        var (rows, report) = try Self.clean(Self.raw, plan)
        #expect(rows.map { $0[0] } == ["1", "3", "4", "5"] && report.droppedMissing == 2)
        plan = CleanPlan()
        plan.cast = ["age": .number]
        plan.impute = ["age": .mean, "city": .mode]
        (rows, _) = try Self.clean(Self.raw, plan)
        #expect(rows[1][2] == "35.5" && rows[3][3] == "Lima")
        plan.dropMissing = ["*"]
        plan.impute = [:]
        (rows, _) = try Self.clean(Self.raw, plan)
        #expect(rows.map { $0[0] } == ["1", "4"])
    }

    @Test("casts to boolean and integer; values that do not convert become missing")
    func casts() throws {
        var plan = CleanPlan()
        plan.cast = ["b": .boolean, "i": .integer]
        let (rows, report) = try Self.clean("b,i\nYes,3.0\nf,2.5\nmaybe,1e3\n", plan)
        #expect(rows == [["true", "3"], ["false", nil], [nil, "1000"]])
        #expect(report.castFailures == ["b": 1, "i": 1])
    }

    @Test("a plan naming an unknown column, or a statistic a column has not, is an error", arguments: [
        ("dedupe", "dedupe: no column named nope"),
        ("mean", "impute name with mean: it is not a number column (string)"),
        ("all", "drop columns: no column would be left"),
    ])
    func badPlans(kind: String, message: String) throws {
        var plan = CleanPlan()
        switch kind {
        case "dedupe": plan.dedupe = ["nope"]
        case "mean": plan.impute = ["name": .mean]
        default: plan.dropColumns = ["id", "name", "age", "city"]
        }
        let error = #expect(throws: LoomError.self) { try Self.clean(Self.raw, plan) }
        #expect(error?.message == message)
    }

    @Test("the CSV writer quotes what needs quoting: written values read back the same")
    func writerRoundTrip() throws {
        let dir = try DataFiles.folder()
        let path = dir.appendingPathComponent("w.csv").path
        let values: [[String?]] = [["a,b", "say \"hi\""], [" lead", "two\nlines"], [nil, "trail "], ["plain", "crlf\r\nx"]]
        let writer = try CSVWriter(path: path, columns: ["x", "y,z"])
        for row in values { try writer.write(row.map { $0.map { Array($0.utf8)[...] } }) }
        try writer.close()
        var sink = CollectingSink()
        _ = try TableReader.read(try TableFiles.list(path), into: &sink)
        #expect(sink.columns == ["x", "y,z"])
        #expect(sink.rows == values)
    }

    @Test("clean makes a new version with lineage; the same clean again is the same version; a failure records nothing", arguments: TestBackend.available)
    func versionsWithLineage(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { store, tracking in
            let dir = try DataFiles.folder()
            let raw = try await tracking.registerDataset(name: "raw", path: try DataFiles.write(dir, "raw.csv", Self.raw))
            var plan = CleanPlan()
            plan.dropMissing = ["*"]
            let (first, report) = try await tracking.cleanDataset(.version(name: "raw", version: nil), plan: plan, into: "tidy")
            #expect(first.created && first.version.version == 1 && report.rowsOut == 3)
            #expect(first.version.sourceType == "operation" && first.version.rowCount == 3)
            let lineage = try JSONDecoder().decode(DatasetLineage.self, from: Data(try #require(first.version.lineage).utf8))
            #expect(lineage.operation == "clean" && lineage.parameters == plan)
            #expect(lineage.inputs == [.init(name: "raw", version: 1, path: nil, digest: raw.version.digest)])
            let (again, _) = try await tracking.cleanDataset(.version(name: "raw", version: 1), plan: plan, into: "tidy")
            #expect(!again.created && again.version.version == 1)

            plan.dedupe = ["nope"]
            await #expect(throws: LoomError.self) { try await tracking.cleanDataset(.version(name: "raw", version: 1), plan: plan, into: "tidy") }
            await #expect(throws: LoomError.self) { try await tracking.cleanDataset(.version(name: "raw", version: 7), plan: CleanPlan(), into: "tidy") }
            #expect(try await store.store.datasetVersions(name: "tidy", workspace: "default").count == 1)
        }
    }
}

@Suite("Splitting data")
struct SplitTests {
    /// Splits `csv` and returns the rows of each part (by part name).
    static func split(_ csv: String, _ plan: SplitPlan) throws -> [String: [[String?]]] {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try TableFiles.list(try DataFiles.write(dir, "in.csv", csv))
        var counter = SplitCounter(stratify: plan.stratify)
        _ = try TableReader.read(files, into: &counter)
        let outputs = SplitPlan.parts.map { dir.appendingPathComponent("\($0).csv").path }
        var splitter = Splitter(plan: plan, outputs: outputs, counter: counter)
        _ = try TableReader.read(files, into: &splitter)
        try splitter.finish()
        var parts: [String: [[String?]]] = [:]
        for (i, part) in SplitPlan.parts.enumerated() {
            var sink = CollectingSink()
            _ = try TableReader.read(try TableFiles.list(outputs[i]), into: &sink)
            parts[part] = sink.rows
        }
        return parts
    }

    static let labelled: String = {
        var csv = "id,label\n"
        for i in 0..<1000 { csv += "\(i),\(i % 10 == 0 ? "rare" : "common")\n" }
        return csv
    }()

    @Test("each part gets exactly its share, every row lands once, the seed decides")
    func exactShares() throws {
        let parts = try Self.split(Self.labelled, SplitPlan(train: 0.7, validation: 0.2, test: 0.1, seed: 7))
        #expect(parts["train"]?.count == 700 && parts["validation"]?.count == 200 && parts["test"]?.count == 100)
        let ids = (parts["train"]! + parts["validation"]! + parts["test"]!).compactMap { $0[0] }.compactMap { Int($0) }
        #expect(ids.sorted() == Array(0..<1000))
        // Not the first 700 rows: a random choice.
        #expect(parts["train"]!.compactMap { Int($0[0]!) }.filter { $0 >= 700 }.count > 100)
        let again = try Self.split(Self.labelled, SplitPlan(train: 0.7, validation: 0.2, test: 0.1, seed: 7))
        #expect(again == parts)
        let other = try Self.split(Self.labelled, SplitPlan(train: 0.7, validation: 0.2, test: 0.1, seed: 8))
        #expect(other != parts)
    }

    @Test("stratified: every part keeps the classes' proportions")
    func stratified() throws {
        let parts = try Self.split(Self.labelled, SplitPlan(train: 0.6, validation: 0.2, test: 0.2, seed: 1, stratify: "label"))
        for (part, expected) in [("train", (540, 60)), ("validation", (180, 20)), ("test", (180, 20))] {
            let labels = parts[part]!.map { $0[1] }
            #expect(labels.filter { $0 == "common" }.count == expected.0 && labels.filter { $0 == "rare" }.count == expected.1, "\(part)")
        }
    }

    @Test("shares must add up to 1; the stratifying column must exist", arguments: [
        (SplitPlan(train: 0.5, validation: 0.1, test: 0.1), "must add up to 1"),
        (SplitPlan(train: 0, validation: 0.5, test: 0.5), "train above 0"),
        (SplitPlan(train: 1.2, validation: -0.1, test: -0.1), "between 0 and 1"),
    ])
    func badShares(plan: SplitPlan, message: String) {
        let error = #expect(throws: LoomError.self) { try plan.check() }
        #expect(error?.message.contains(message) == true)
    }

    @Test("split registers a version per part with lineage; again with the same seed, the same versions", arguments: TestBackend.available)
    func versions(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, tracking in
            let dir = try DataFiles.folder()
            let raw = try await tracking.registerDataset(name: "raw", path: try DataFiles.write(dir, "raw.csv", Self.labelled))
            let plan = SplitPlan(train: 0.8, validation: 0, test: 0.2, seed: 3, stratify: "label")
            let parts = try await tracking.splitDataset(.version(name: "raw", version: 1), plan: plan, into: "raw")
            #expect(parts.map(\.part) == ["train", "test"])
            #expect(parts.map(\.registration.version.name) == ["raw-train", "raw-test"])
            #expect(parts.map(\.registration.version.rowCount) == [800, 200])
            let lineage = try JSONDecoder().decode(DatasetLineage.self, from: Data(try #require(parts[1].registration.version.lineage).utf8))
            #expect(lineage.operation == "split" && lineage.part == "test" && lineage.split == plan)
            #expect(lineage.inputs.first?.digest == raw.version.digest)
            let again = try await tracking.splitDataset(.version(name: "raw", version: 1), plan: plan, into: "raw")
            #expect(again.map(\.registration.created) == [false, false])
            await #expect(throws: LoomError.self) {
                try await tracking.splitDataset(.version(name: "raw", version: 1), plan: SplitPlan(stratify: "nope"), into: "raw")
            }
        }
    }
}
