import Foundation
import LoomArtifacts
import LoomCore
import LoomTesting
import LoomTracking
import Testing

@testable import LoomStore

/// While writes never stop, the checkpointer still gets moments with no write transaction open
/// (an open transaction hands it one as it ends, and the next waits), so that SQLite's
/// write-ahead log can start over instead of growing until every commit checkpoints by itself.
@Suite("SQLite log restarts")
struct WALRestartTests {
    @Test func theLogStartsOverWhileWritesNeverPause() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-wal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("loom.db").path
        let restartFrames: Int64 = 256
        let backend = try await SQLiteBackend.open(path: path, logger: TestStore.logger, walRestartFrames: restartFrames)
        let store = SQLMetadataStore(backend: backend, logger: TestStore.logger)
        let tracking = TrackingService(store: store, artifacts: try LocalArtifactStore(root: dir.appendingPathComponent("artifacts").path), logger: TestStore.logger)
        _ = try await tracking.prepare()
        let exp = try await tracking.createExperiment(name: "wal", artifactLocation: nil, tags: [])
        let run = try await tracking.createRun(experimentID: exp.id, userID: "u", startTime: 1, runName: "r", tags: [])

        // Sixteen writers that never pause: each writes at least `minRounds` batches and goes on
        // until the checkpointer has had a quiet moment and seen the log start over, or until
        // `maxRounds` (far more than that takes; reaching it means the hand-over is broken).
        let writers = 16, minRounds = 150, maxRounds = 3000, keys = 10
        let rounds = try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var i = 0
                    while i < maxRounds, i < minRounds || backend.quietCheckpoints == 0 || backend.logRestarts == 0 {
                        // Many keys per write: each commit touches many pages.
                        let metrics = (0..<keys).map { k in Metric(key: "k\(k)", value: Double(i), timestamp: 1, step: Int64(w * 10_000 + i)) }
                        try await tracking.logBatch(runID: run.info.runID, metrics: metrics, params: [], tags: [])
                        i += 1
                    }
                    return i
                }
            }
            return try await group.reduce(0, +)
        }
        let history = try await store.metricHistory(runID: run.info.runID, key: "k3", maxResults: 50_000, offset: 0)
        #expect(history.items.count == rounds)
        #expect(backend.largestLogFrames >= restartFrames, "the writes were too few to need a restart")
        // Whether the quiet moments shorten the tail of the write latency is for the benchmark to
        // show (BENCHMARKS.md), not for a test.
        #expect(backend.quietCheckpoints >= 1)
        #expect(backend.logRestarts >= 1)
        #expect(rounds < writers * maxRounds, "the writers never saw a quiet checkpoint and a restart")
        await store.shutdown()
    }
}
