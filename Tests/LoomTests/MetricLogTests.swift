import Foundation
import LoomArtifacts
import LoomCore
import LoomTesting
import LoomTracking
import SQLKit
import Testing

@testable import LoomStore

/// On SQLite, small writes of plain metric points go to an append-only log that the writer
/// merges into packed blocks (`metric_blocks`) once it holds enough points; other points go to
/// `metrics`. These tests look at where the points are, which the conformance suite
/// (`metricHistoryAcrossMerges`) cannot see.
@Suite("SQLite metric log")
struct MetricLogTests {
    struct Fixture {
        let dir: URL
        let backend: SQLiteBackend
        let store: SQLMetadataStore
        let tracking: TrackingService

        static func open(_ dir: URL, mergePoints: Int) async throws -> Fixture {
            let backend = try await SQLiteBackend.open(path: dir.appendingPathComponent("loom.db").path, logger: TestStore.logger)
            let store = SQLMetadataStore(backend: backend, logger: TestStore.logger, metricLogMergePoints: mergePoints)
            let tracking = TrackingService(store: store, artifacts: try LocalArtifactStore(root: dir.appendingPathComponent("artifacts").path), logger: TestStore.logger)
            _ = try await tracking.prepare()
            return Fixture(dir: dir, backend: backend, store: store, tracking: tracking)
        }

        /// Points in `metric_log`, in `metrics` and in `metric_blocks`.
        func counts() async throws -> [Int] {
            try await backend.withReader { db in
                let row = try await db.raw("""
                    SELECT (SELECT count(*) FROM metrics) AS m,
                           (SELECT COALESCE(sum(length(points)), 0) / 25 FROM metric_blocks) AS b
                    """).first()!
                var logged = 0
                for logRow in try await db.raw("SELECT points FROM metric_log").all() {
                    let sections = try #require(SQLMetadataStore.MetricLogRow.decode(try logRow.decode(column: "points", as: [UInt8].self)))
                    logged += sections.map(\.points.count).reduce(0, +)
                }
                return [logged] + (try ["m", "b"].map { try row.decode(column: $0, as: Int.self) })
            }
        }

        /// A new experiment and a run in it: their ids.
        func newRun() async throws -> (experimentID: String, runID: String) {
            let exp = try await tracking.createExperiment(name: "log", artifactLocation: nil, tags: [])
            let run = try await tracking.createRun(experimentID: exp.id, userID: "u", startTime: 1, runName: "r", tags: [])
            return (exp.id, run.info.runID)
        }

        /// Rows in `metric_log`.
        func logRows() async throws -> Int {
            try await backend.withReader { db in
                try await db.raw("SELECT count(*) AS n FROM metric_log").first()!.decode(column: "n", as: Int.self)
            }
        }
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-mlog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func points(_ steps: Range<Int>, key: String = "k") -> [Metric] {
        steps.map { Metric(key: key, value: Double($0), timestamp: 1, step: Int64($0)) }
    }

    @Test func smallWritesAreLoggedAndMergedInBatches() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var f = try await Fixture.open(dir, mergePoints: 50)
        let (experimentID, id) = try await f.newRun()

        try await f.tracking.logBatch(runID: id, metrics: points(0..<20) + points(0..<10, key: "j"), params: [], tags: [])
        #expect(try await f.counts() == [30, 0, 0])
        #expect(try await f.logRows() == 1, "one packed row per run and batch")
        try await f.tracking.logBatch(runID: id, metrics: points(30..<60), params: [], tags: [])
        #expect(try await f.counts() == [60, 0, 0], "below the threshold when the batch started: no merge")
        // The next batch merges first (the log held 60 >= 50 points), then logs its own point;
        // a point logged again after its first copy was merged is read once.
        try await f.tracking.logMetric(runID: id, metric: Metric(key: "k", value: 3, timestamp: 1, step: 3))
        #expect(try await f.counts() == [1, 0, 60])
        var history = try await f.store.metricHistory(runID: id, key: "k", maxResults: 1000, offset: 0).items
        #expect(history.map(\.step) == (Array(0..<20) + Array(30..<60)).map(Int64.init))
        #expect(try await f.store.metricHistory(runID: id, key: "j", maxResults: 1000, offset: 0).items.map(\.step) == (0..<10).map(Int64.init))

        // Large writes and points that name a model go straight to `metrics`.
        try await f.tracking.logBatch(runID: id, metrics: points(100..<250), params: [], tags: [])
        var withModel = Metric(key: "k", value: 7, timestamp: 1, step: 7_000)
        withModel.modelID = try await f.tracking.createLoggedModel(experimentID: experimentID, name: "m", modelType: nil, sourceRunID: id, params: [], tags: []).modelID
        try await f.tracking.logBatch(runID: id, metrics: [withModel], params: [], tags: [])
        #expect(try await f.counts() == [1, 151, 60])

        // What one process leaves in the log, the next one's first batch merges.
        try await f.tracking.logBatch(runID: id, metrics: points(60..<70), params: [], tags: [])
        #expect(try await f.counts() == [11, 151, 60])
        await f.store.shutdown()
        f = try await Fixture.open(dir, mergePoints: 50)
        try await f.tracking.logMetric(runID: id, metric: Metric(key: "other", value: 1, timestamp: 1, step: 1))
        #expect(try await f.counts() == [1, 151, 71], "blocks keep repeated points; reads drop them")
        history = try await f.store.metricHistory(runID: id, key: "k", maxResults: 1000, offset: 0).items
        let expected: [Int64] = Array(0..<20) + Array(30..<70) + Array(100..<250) + [7_000]
        #expect(history.map(\.step) == expected)
        #expect(history.last?.modelID == withModel.modelID)
        // Pages over the three places: the same points, in the same order.
        var paged: [Metric] = []
        var offset = 0
        while true {
            let page = try await f.store.metricHistory(runID: id, key: "k", maxResults: 64, offset: offset)
            paged += page.items
            guard page.nextPageToken != nil else { break }
            offset += 64
        }
        #expect(paged.map(\.step) == history.map(\.step))
        let interval = try await f.store.metricHistoryBulkInterval(MetricIntervalQuery(runIDs: [id], key: "k", startStep: 50, endStep: 120, maxResults: 1000))
        let inInterval: [Int64] = Array(50..<70) + Array(100...120)
        #expect(interval.map(\.step) == inInterval)
        #expect(interval.allSatisfy { $0.runID == id })
        await f.store.shutdown()
    }

    /// The points that two writes of one batch log for one run share a row; reads see them
    /// before any merge, each once, with NaN and the extremes as written.
    @Test func concurrentWritesShareOnePackedRow() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try await Fixture.open(dir, mergePoints: 100_000)
        let (_, id) = try await f.newRun()
        // The first batch merges (nothing); then many writers at once share batches.
        try await f.tracking.logMetric(runID: id, metric: Metric(key: "v", value: .nan, timestamp: 1, step: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<40 {
                group.addTask {
                    try await f.tracking.logBatch(runID: id, metrics: [
                        Metric(key: "v", value: w == 0 ? .greatestFiniteMagnitude : Double(w), timestamp: 2, step: Int64(w + 1)),
                        Metric(key: "v", value: 0.5, timestamp: 2, step: Int64(w + 1)),
                        Metric(key: "u", value: -Double(w), timestamp: 3, step: 7),
                    ], params: [], tags: [])
                }
            }
            try await group.waitForAll()
        }
        #expect(try await f.counts() == [121, 0, 0])
        #expect(try await f.logRows() <= 41, "one row per batch at most, not one per point")
        let v = try await f.store.metricHistory(runID: id, key: "v", maxResults: 1000, offset: 0).items
        #expect(v.count == 81)
        #expect(v[0].value.isNaN && v[0].step == 0)
        #expect(v.dropFirst().map(\.step) == (1...40).flatMap { [Int64($0), Int64($0)] })
        #expect(v.contains { $0.value == .greatestFiniteMagnitude })
        let u = try await f.store.metricHistory(runID: id, key: "u", maxResults: 1000, offset: 0).items
        #expect(u.map(\.value) == (0..<40).map { -Double(39 - $0) })
        #expect(try await f.store.run(id: id)?.metrics.first { $0.key == "u" }?.value == 0)
        await f.store.shutdown()
    }

    @Test func packedRowsDecodeWhatWasEncodedAndRefuseTheRest() throws {
        typealias P = SQLMetadataStore.StoredPoint
        let sections: [SQLMetadataStore.MetricLogRow.Section] = [
            ("loss", [P(step: 1, timestamp: 2, value: 0.25, isNaN: false), P(step: -5, timestamp: .max, value: 0, isNaN: true)]),
            ("ключ/é", [P(step: .min, timestamp: 0, value: -.greatestFiniteMagnitude, isNaN: false)]),
            ("", []),
        ]
        let bytes = SQLMetadataStore.MetricLogRow.encode(sections)
        let back = try #require(SQLMetadataStore.MetricLogRow.decode(bytes))
        #expect(back.map(\.key) == sections.map(\.key))
        #expect(back.map(\.points) == sections.map(\.points))
        for cut in [1, 2, 7, 25, bytes.count - 1] {
            #expect(SQLMetadataStore.MetricLogRow.decode(Array(bytes.prefix(cut))) == nil, "cut at \(cut)")
        }
        #expect(SQLMetadataStore.MetricLogRow.decode([]).map(\.count) == 0)
        // One key's sections only; the others are still checked.
        let one = try #require(SQLMetadataStore.MetricLogRow.decode(bytes, onlyKey: "ключ/é"))
        #expect(one.map(\.key) == ["ключ/é"] && one.first?.points == sections[1].points)
        #expect(SQLMetadataStore.MetricLogRow.decode(bytes, onlyKey: "lo")?.count == 0)
        #expect(SQLMetadataStore.MetricLogRow.decode(Array(bytes.dropLast()), onlyKey: "loss") == nil)
    }
}
